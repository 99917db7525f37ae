import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { foldStream, SnapshotEvery } from "../../actors/command.ts"
import { snapshotsDir } from "../../adapters/snapshots/file.ts"
import { ChainProjection } from "../../domain/projections/chain.ts"
import { ModelProjection } from "../../domain/projections/model.ts"
import { NodesProjection } from "../../domain/projections/nodes.ts"
import { PlansProjection } from "../../domain/projections/plans.ts"
import type { Projection } from "../../domain/projections/projection.ts"
import { ledgerLayer } from "../../infra/ledger.ts"
import { blyan } from "../support/cli.ts"
import { tempDir } from "../support/tmp.ts"

const projections: ReadonlyArray<Projection<any, unknown>> = [ChainProjection, ModelProjection, NodesProjection, PlansProjection]

/** Fold every whole-log projection of the ledger in `dir` as a command would, leaving its snapshots. */
const takeSnapshots = (dir: string) =>
  Effect.runPromise(
    Effect.forEach(projections, (p) => foldStream("*", p)).pipe(
      Effect.provide(ledgerLayer({ scheme: "file", dir })),
      Effect.provideService(SnapshotEvery, 1)
    )
  )

describe("blyan audit: projection snapshots", () => {
  it("checks every snapshot in the data directory against the replay, notes and removes a forged one, and still passes", async () => {
    const data = tempDir()
    expect((await blyan(["init", "--data", data])).code).toBe(0)
    await takeSnapshots(data)
    const file = path.join(snapshotsDir(data), "model.json")
    const snapshot = JSON.parse(fs.readFileSync(file, "utf8"))
    // A forged reason for the first part's genesis version; the snapshot still names the log's hash.
    snapshot.state.history[0][1][0].reason = "forged"
    fs.writeFileSync(file, JSON.stringify(snapshot))

    const audit = await blyan(["audit", "--data", data])
    expect(audit.code).toBe(0)
    expect(audit.stdout).toMatch(/^audit OK/)
    expect(audit.stdout).toMatch(/snapshots 3 equal to the replay/)
    expect(audit.stdout).toMatch(new RegExp(`note    snapshot model at seq ${snapshot.seq} holds a state other than the replay's from genesis there; removed`))
    expect(fs.existsSync(file)).toBe(false)

    const again = await blyan(["audit", "--data", data, "--json"])
    expect(again.code).toBe(0)
    const report = JSON.parse(again.stdout)
    expect(report).toMatchObject({ ok: true, snapshots: { bad: [], unchecked: [] } })
    expect(report.snapshots.verified.map((v: { projection: string }) => v.projection)).toEqual(["chain", "nodes", "plans"])
  })
})

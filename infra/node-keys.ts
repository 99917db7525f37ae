import * as fs from "node:fs"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { handleCommand } from "../actors/command.ts"
import { sha256Hex } from "../domain/ledger/hash.ts"
import { StoreFailure } from "../domain/ledger/errors.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { KeysProjection, decideIssueKey } from "../domain/projections/keys.ts"

/**
 * The API key of `blyan up`'s own node agents or validators: kept in `<home>/up-<role>s.apikey`,
 * and issued in this ledger (with that role) the first time it is used with it. Only its hash is recorded.
 */
export const inProcessKey = (home: string, role: "node" | "validator") =>
  Effect.gen(function* () {
    const file = path.join(home, `up-${role}s.apikey`)
    const key = yield* Effect.try({
      try: () => {
        if (!fs.existsSync(file)) {
          fs.mkdirSync(home, { recursive: true, mode: 0o700 })
          fs.writeFileSync(file, `bly_${role}_${randomBytes(24).toString("base64url")}\n`, { mode: 0o600, flag: "wx" })
        }
        return fs.readFileSync(file, "utf8").trim()
      },
      catch: (e) => new StoreFailure({ reason: `the in-process ${role}s' API key ${file}: ${(e as Error).message}` })
    })
    const keyHash = sha256Hex(key)
    yield* handleCommand({
      stream: Streams.keys,
      projection: KeysProjection,
      // Already issued here: nothing to record (a revoked key stays revoked; registration says so).
      decide: (s) => (s.has(keyHash) ? Either.right([]) : decideIssueKey(s, keyHash, role, `blyan up's in-process ${role}s`))
    })
    return key
  })

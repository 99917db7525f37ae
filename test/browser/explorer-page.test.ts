import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { chromium, type Browser, type Page } from "playwright-core"
import { registerContributor } from "../../actors/contributors.ts"
import { initLedger } from "../../actors/genesis.ts"
import { loadModel } from "../../actors/model-ledger.ts"
import { trainPart } from "../../actors/pol-evaluation.ts"
import { startProjector } from "../../actors/projector.ts"
import { runLocalRound } from "../../actors/round-coordinator.ts"
import { ModelRunnerLive } from "../../adapters/executor/model-runner.ts"
import { Explorer, explorerOf, serveExplorer } from "../../adapters/http/explorer-server.ts"
import { BlobStore } from "../../domain/ports/blob-store.ts"
import { EventStore } from "../../domain/ports/event-store.ts"
import { sha256Hex } from "../../domain/ledger/hash.ts"
import { keyPairFromSeed } from "../../domain/ledger/signing.ts"
import { defaultPoLSettings } from "../../domain/pol/evaluation.ts"
import { TestExecutor, tinySpec } from "../domain/model/support.ts"
import { contributorSeed, testLedgerKey } from "../support/ledger.ts"
import { freshLedger } from "../support/stores.ts"

/** Screenshots of every run, for a person to look at: the page as a user saw it. */
const SHOTS = path.resolve("artifacts/screenshots")
const CHROMIUM = "/usr/bin/chromium"
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const corpus = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/train.txt")))
const heldOut = new Uint8Array(fs.readFileSync(path.resolve("docs/corpus/heldout.txt")))
const contributor = keyPairFromSeed(contributorSeed(1))
const validators = [1, 2, 3].map((i) => keyPairFromSeed(sha256Hex(`page validator ${i}`)))
const Runtime = Layer.provide(ModelRunnerLive, TestExecutor)

/** A browser for the scope. */
const browser = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: CHROMIUM, args: FLAGS })),
  (b: Browser) => Effect.promise(() => b.close())
)

/** A tiny ledger served by the explorer (its events as `tamper` leaves them), and an improvement to append while the page is open. */
const served = (tamper: (events: ReadonlyArray<{ seq: number; data?: unknown }>) => ReadonlyArray<unknown> = (es) => es) =>
  Effect.gen(function* () {
    const { events, blobs } = yield* freshLedger()
    const on = <A, E, R>(eff: Effect.Effect<A, E, R>) => eff.pipe(Effect.provideService(EventStore, events), Effect.provideService(BlobStore, blobs))
    yield* on(initLedger(tinySpec))
    yield* on(registerContributor(contributor.publicKey, testLedgerKey))
    const projector = yield* on(startProjector)
    const explorer = explorerOf(projector, events, blobs, {
      contribute: () => Effect.fail({ message: "no contributions here" }),
      chat: () => Effect.fail({ message: "no router here" })
    })
    const url = yield* serveExplorer({ host: "127.0.0.1", port: 0, page: path.resolve("dist/web") }).pipe(
      Effect.provideService(Explorer, { ...explorer, events: (from, limit) => Effect.map(explorer.events(from, limit), (es) => tamper(es) as never) })
    )
    const improve = Effect.gen(function* () {
      const { weights } = yield* on(loadModel)
      const candidate = yield* trainPart(weights, "layer1.expert0", corpus, { steps: 60, batch: 8, lr: 1e-2, seed: 1 })
      return yield* on(runLocalRound({ candidate, contributorSeed: contributor.seed, validators, ledgerKey: testLedgerKey, heldOut, settings: defaultPoLSettings }))
    })
    return { url, improve }
  })

const text = (page: Page, id: string) => page.getByTestId(id)

describe("the explorer's page in Chromium", () => {
  it.scopedLive(
    "shows the model and the chain, shows a new block as it is appended, and verifies the whole log in the browser; readable on a phone",
    () =>
      Effect.gen(function* () {
        fs.mkdirSync(SHOTS, { recursive: true })
        const { url, improve } = yield* served()
        const b = yield* browser
        const page = yield* Effect.promise(() => b.newPage({ viewport: { width: 1280, height: 900 } }))
        yield* Effect.promise(async () => {
          await page.goto(url)
          await text(page, "live-status").filter({ hasText: "live" }).waitFor()
          await page.locator('[data-testid="parts"] tr').nth(tinySpec.layers * tinySpec.experts).waitFor()
        })
        // An improvement accepted while the page is open appears at the top of chain B.
        const report = yield* improve
        expect(report.accepted).toBe(true)
        yield* Effect.promise(async () => {
          await page.locator(`[data-testid="blocks"] tr[data-block="${report.block}"]`).waitFor()
          expect(await page.locator('[data-testid="blocks"] tr').first().getAttribute("data-block")).toBe(report.block)
          await page.getByRole("link", { name: "layer1.expert0", exact: true }).click()
          await text(page, "history").getByText(/layer1\.expert0: 2 version\(s\)/).waitFor()
          await text(page, "rounds").getByText(/accepted/).waitFor()
          await text(page, "verify").click()
          await text(page, "verify-result").getByText(/^verified \d+ events from genesis/).waitFor()
          await page.screenshot({ path: path.join(SHOTS, "explorer-desktop.png"), fullPage: true })
        })
        const phone = yield* Effect.promise(() => b.newPage({ viewport: { width: 390, height: 844 }, isMobile: true }))
        const overflow = yield* Effect.promise(async () => {
          await phone.goto(url)
          await phone.locator('[data-testid="parts"] tr').first().waitFor()
          await phone.screenshot({ path: path.join(SHOTS, "explorer-phone.png"), fullPage: true })
          return phone.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        })
        // Nothing wider than the phone's screen: no sideways scrolling of the page.
        expect(overflow).toBeLessThanOrEqual(0)
      }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "a log altered on its way to the browser fails the in-browser verification, naming the first bad seq",
    () =>
      Effect.gen(function* () {
        const bad = 5
        const { url } = yield* served((es) => es.map((e) => (e.seq === bad ? { ...e, data: { altered: true } } : e)))
        const b = yield* browser
        const page = yield* Effect.promise(() => b.newPage())
        yield* Effect.promise(async () => {
          await page.goto(url)
          await text(page, "verify").click()
          await text(page, "verify-result").getByText(new RegExp(`^first bad seq ${bad}: its contents hash to`)).waitFor()
          await page.screenshot({ path: path.join(SHOTS, "explorer-tampered.png") })
        })
      }).pipe(Effect.provide(Runtime)),
    { timeout: 120_000 }
  )
})

import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { keyPairFromSeed, type KeyPair } from "../domain/ledger/signing.ts"
import { StoreFailure } from "../domain/ledger/errors.ts"

/**
 * This user's ed25519 key (`<home>/<name>.key`, the 32-byte seed in hex, mode 0600), created on
 * first use. It lives outside the data directory: the ledger holds only public keys.
 */
export const localKey = (home: string, name: string): Effect.Effect<KeyPair, StoreFailure> =>
  Effect.try({
    try: () => {
      const file = path.join(home, `${name}.key`)
      if (!fs.existsSync(file)) {
        fs.mkdirSync(home, { recursive: true, mode: 0o700 })
        // Written whole beside it, then linked into place: a process starting at the same moment
        // finds no file or a whole one, and the first link wins.
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
        fs.writeFileSync(tmp, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" })
        try {
          fs.linkSync(tmp, file)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
        } finally {
          fs.rmSync(tmp, { force: true })
        }
      }
      const seed = fs.readFileSync(file, "utf8").trim()
      if (!/^[0-9a-f]{64}$/.test(seed)) throw new Error(`${file} does not hold a 32-byte hex seed`)
      return keyPairFromSeed(seed)
    },
    catch: (e) => new StoreFailure({ reason: `key ${name}: ${(e as Error).message}` })
  })

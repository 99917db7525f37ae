import { StoreFailure } from "../domain/ledger/errors.ts"

/** The text of a thrown cause: its `message` where it has a non-empty one, else the value as a string. */
export const causeText = (e: unknown): string => {
  const message = (e as { readonly message?: unknown } | null | undefined)?.message
  return typeof message === "string" && message !== "" ? message : String(e)
}

/** A `catch` for `Effect.try`/`tryPromise`: the cause as a StoreFailure whose reason is `what: <cause>`. */
export const storeFailure =
  (what: string) =>
  (e: unknown): StoreFailure =>
    new StoreFailure({ reason: `${what}: ${causeText(e)}` })

import { Context, Schema, type Effect } from "effect"

/** The tree-head store cannot be used (I/O, permissions); the message names the path where known. */
export class TreeHeadStoreFailure extends Schema.TaggedError<TreeHeadStoreFailure>()("TreeHeadStoreFailure", { message: Schema.String }) {}

/**
 * The signed tree heads of a ledger (see `domain/ledger/tree-head.ts`), kept beside its log in the
 * order they were signed. They are evidence, checked by every audit; a head is only ever added.
 */
export interface TreeHeadStoreApi {
  readonly append: (note: string) => Effect.Effect<void, TreeHeadStoreFailure>
  readonly all: Effect.Effect<ReadonlyArray<string>, TreeHeadStoreFailure>
}

export class TreeHeadStore extends Context.Tag("blyan/TreeHeadStore")<TreeHeadStore, TreeHeadStoreApi>() {}

import { Either, Schema, type ParseResult } from "effect"

/**
 * How a projection's state is written into a snapshot and read back. `encode` gives plain JSON
 * (Maps and Sets as arrays, in their insertion order, so a decoded state folds on exactly as the
 * original would); `decode` checks everything, since a snapshot file is input, not truth.
 * `version` names the encoding and the fold's meaning together: bump it when either changes, and
 * snapshots of the old version are discarded instead of being read as the new one.
 */
export interface StateCodec<S> {
  readonly version: number
  readonly encode: (state: S) => Either.Either<unknown, ParseResult.ParseError>
  readonly decode: (json: unknown) => Either.Either<S, ParseResult.ParseError>
}

/** The codec a schema gives: its encoded side is the snapshot's JSON, its type side the state. */
export const schemaCodec = <S, I>(version: number, schema: Schema.Schema<S, I>): StateCodec<S> => ({
  version,
  encode: Schema.encodeEither(schema),
  decode: Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })
})

/** A codec whose state carries more than it stores: `complete` rebuilds the rest after decoding. */
export const completedCodec = <S, T>(codec: StateCodec<T>, complete: (stored: T) => S, store: (state: S) => T): StateCodec<S> => ({
  version: codec.version,
  encode: (s) => codec.encode(store(s)),
  decode: (json) => Either.map(codec.decode(json), complete)
})

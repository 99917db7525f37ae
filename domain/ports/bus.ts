import { Context, Schema, type Effect, type Scope, type Stream } from "effect"

/** The bus cannot be used: not connected, closed, or the transport failed. */
export class BusFailure extends Schema.TaggedError<BusFailure>()("BusFailure", { message: Schema.String }) {}

/** Nobody answered a request within its deadline. */
export class RequestTimedOut extends Schema.TaggedError<RequestTimedOut>()("RequestTimedOut", {
  subject: Schema.String,
  timeoutMs: Schema.Number,
  message: Schema.String
}) {
  static of({ subject, timeoutMs }: { readonly subject: string; readonly timeoutMs: number }): RequestTimedOut {
    return new RequestTimedOut({ subject, timeoutMs, message: `no answer on ${subject} within ${timeoutMs} ms` })
  }
}

/** A request found nobody listening on its subject: it fails at once instead of waiting out its deadline. */
export class NoResponders extends Schema.TaggedError<NoResponders>()("NoResponders", { subject: Schema.String, message: Schema.String }) {
  static of({ subject }: { readonly subject: string }): NoResponders {
    return new NoResponders({ subject, message: `nobody serves ${subject}` })
  }
}

/** A message larger than the bus carries: refused before anything is sent. */
export class MessageTooLarge extends Schema.TaggedError<MessageTooLarge>()("MessageTooLarge", {
  subject: Schema.String,
  bytes: Schema.Number,
  max: Schema.Number,
  message: Schema.String
}) {
  static of({ subject, bytes, max }: { readonly subject: string; readonly bytes: number; readonly max: number }): MessageTooLarge {
    return new MessageTooLarge({ subject, bytes, max, message: `a message of ${bytes} bytes on ${subject} exceeds the bus's ${max}-byte limit` })
  }
}

/** A subject that is not one the bus can carry (empty tokens, spaces), or a wildcard where a concrete subject is needed. */
export class InvalidSubject extends Schema.TaggedError<InvalidSubject>()("InvalidSubject", { subject: Schema.String, message: Schema.String }) {
  static of({ subject, reason }: { readonly subject: string; readonly reason: string }): InvalidSubject {
    return new InvalidSubject({ subject, message: `invalid subject ${JSON.stringify(subject)}: ${reason}` })
  }
}

export type SendError = BusFailure | MessageTooLarge | InvalidSubject
export type RequestError = SendError | RequestTimedOut | NoResponders

/** A message as delivered to a subscriber: the concrete subject it was published on, and its bytes. */
export type BusMessage = { readonly subject: string; readonly data: Uint8Array }

/**
 * Messages between the processes of a Blyan network (see `domain/network/subjects.ts` for the
 * subjects), with NATS semantics: subjects are dot-separated tokens, subscriptions may use `*`
 * (one token) and `>` (the rest); members of a queue group share a subject's messages, each
 * message going to one of them; delivery is at most once, in order per publisher and subscriber.
 */
export interface BusApi {
  /** The largest message, in bytes, the bus carries. */
  readonly maxPayload: number
  readonly publish: (subject: string, data: Uint8Array) => Effect.Effect<void, SendError>
  /**
   * The messages published on `subject` (a pattern) from now until the scope closes or the bus
   * drains; with `queue`, only this member's share of them.
   */
  readonly subscribe: (subject: string, options?: { readonly queue?: string }) => Effect.Effect<Stream.Stream<BusMessage>, BusFailure | InvalidSubject, Scope.Scope>
  /** Ask whoever serves `subject` and wait at most `timeoutMs` for the first answer. */
  readonly request: (subject: string, data: Uint8Array, options: { readonly timeoutMs: number }) => Effect.Effect<Uint8Array, RequestError>
  /**
   * Answer the requests on `subject` with `handler`, as a member of `queue` if given, until the
   * scope closes or the bus drains; requests already taken are answered before either completes.
   * A handler that fails sends no answer (the requester's deadline decides).
   */
  readonly serve: <E>(
    subject: string,
    handler: (request: BusMessage) => Effect.Effect<Uint8Array, E>,
    options?: { readonly queue?: string }
  ) => Effect.Effect<void, BusFailure | InvalidSubject, Scope.Scope>
  /** Stop taking messages, answer what was taken, deliver what was sent, then close; later use fails with BusFailure. */
  readonly drain: Effect.Effect<void>
}

export class Bus extends Context.Tag("Bus")<Bus, BusApi>() {}

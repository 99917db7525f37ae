/**
 * Requests answered in JSON with `{ ok: true, … }` or `{ ok: false, reason }`; among them those a
 * node makes of the owner of its stream (register, announce), answered with whether it was
 * recorded or, in words, why not. The asker hears every refusal rather than waiting out its deadline.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { Bus } from "../domain/ports/bus.ts"

type OwnerReply = { readonly ok: true } | { readonly ok: false; readonly reason: string }

const encoder = new TextEncoder()
const reply = (r: OwnerReply) => encoder.encode(JSON.stringify(r))

/**
 * Answer requests on `subject` with `decide` (given the request's text) until the scope closes. A
 * failure tagged `refusal` is the requester's fault; any other is logged here too.
 */
export const serveOwnerRequests = <E extends { readonly _tag: string; readonly message: string }, R>(
  subject: string,
  refusal: string,
  decide: (text: string) => Effect.Effect<void, E, R>
) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<R>()
    yield* bus.serve(subject, (request) =>
      decide(new TextDecoder().decode(request.data)).pipe(
        Effect.as(reply({ ok: true })),
        Effect.catchAll((e) =>
          e._tag === refusal
            ? Effect.succeed(reply({ ok: false, reason: e.message }))
            : Effect.as(Effect.logError(`a request on ${subject} could not be recorded`, e), reply({ ok: false, reason: `not recorded: ${e.message}` }))
        ),
        Effect.provide(context)
      )
    )
  })

/**
 * Answer requests on `subject`, JSON that `request` decodes, with `answer`'s fields as
 * `{ ok: true, … }` until the scope closes; a request that does not decode, a failure, or an
 * answer too large for the bus as `{ ok: false, reason }`, so the asker never waits out its deadline.
 */
export const serveJson = <I, II, A extends object, E extends { readonly message: string }, R>(
  subject: string,
  request: Schema.Schema<I, II>,
  answer: (req: I) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const context = yield* Effect.context<R>()
    const decode = Schema.decodeUnknownEither(Schema.parseJson(request), { onExcessProperty: "error" })
    yield* bus.serve(subject, (m) =>
      Effect.gen(function* () {
        const req = decode(new TextDecoder().decode(m.data))
        if (Either.isLeft(req)) return reply({ ok: false, reason: `not a request of ${subject}: ${ParseResult.TreeFormatter.formatErrorSync(req.left)}` })
        const answered = encoder.encode(JSON.stringify({ ok: true, ...(yield* answer(req.right)) }))
        return answered.length <= bus.maxPayload
          ? answered
          : reply({ ok: false, reason: `the answer (${answered.length} bytes) exceeds the bus's ${bus.maxPayload}-byte limit; ask for less` })
      }).pipe(
        Effect.catchAll((e) => Effect.succeed(reply({ ok: false, reason: e.message }))),
        Effect.provide(context)
      )
    )
  })

/**
 * Ask `subject` with `body` as JSON, for an answer `{ ok: true, …A }`; `{ ok: false, reason }`, or
 * an answer that is not JSON of either shape, as `refused(reason)`.
 */
export const askJson = <A extends object, E>(subject: string, body: unknown, timeoutMs: number, refused: (reason: string) => E) =>
  Effect.gen(function* () {
    const answer = yield* (yield* Bus).request(subject, encoder.encode(JSON.stringify(body)), { timeoutMs })
    let r: ({ ok: true } & A) | { ok: false; reason: unknown } | undefined
    try {
      r = JSON.parse(new TextDecoder().decode(answer))
    } catch {
      r = undefined
    }
    if (r?.ok === true) return r
    return yield* Effect.fail(refused(r?.ok === false && typeof r.reason === "string" ? r.reason : `the answer on ${subject} is not one`))
  })

/** Ask the owner; its refusal (or an answer that is not one) as `refused(reason)`. */
export const askOwner = <E>(subject: string, body: unknown, timeoutMs: number, refused: (reason: string) => E) =>
  Effect.asVoid(askJson(subject, body, timeoutMs, refused))

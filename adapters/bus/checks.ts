import { Effect } from "effect"
import { subjectProblem } from "../../domain/network/subjects.ts"
import { InvalidSubject, MessageTooLarge } from "../../domain/ports/bus.ts"

/** NATS's default `max_payload`: the memory bus carries no more than a default server would. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024

/** What every adapter checks before sending: a concrete subject, and a message within the limit. */
export const checkSend = (subject: string, data: Uint8Array, maxPayload: number): Effect.Effect<void, MessageTooLarge | InvalidSubject> => {
  const problem = subjectProblem(subject, false)
  if (problem !== undefined) return Effect.fail(InvalidSubject.of({ subject, reason: problem }))
  return data.byteLength > maxPayload ? Effect.fail(MessageTooLarge.of({ subject, bytes: data.byteLength, max: maxPayload })) : Effect.void
}

/** A subscription's pattern may use wildcards. */
export const checkSubscribe = (subject: string): Effect.Effect<void, InvalidSubject> => {
  const problem = subjectProblem(subject, true)
  return problem === undefined ? Effect.void : Effect.fail(InvalidSubject.of({ subject, reason: problem }))
}

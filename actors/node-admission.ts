/**
 * Announcements, decided by the owner of the node streams (the process that holds the store): a
 * node says it serves certain expert blocks (`NodeExpertsAnnounced`) or that it has retired
 * (`NodeRetired`). Before a serving announcement is recorded, the node is asked to compute each
 * expert it claims on a fresh random input, and its signed answer must match what the owner
 * computes from the block it holds: a node that does not hold a block it names is refused.
 */
import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import { BlobStore } from "../domain/ports/blob-store.ts"
import { Streams } from "../domain/ledger/streams.ts"
import { BUILTIN_MODEL } from "../domain/model/families/imported-spec.ts"
import { chooseModel, ModelProjection, type ChosenModel, type ModelState } from "../domain/projections/model.ts"
import { NodesProjection, type NodesState } from "../domain/projections/nodes.ts"
import { sideBySide } from "../domain/projections/projection.ts"
import { makeExpertModels, type ExpertModel } from "../domain/model/expert-models.ts"
import { decodePart } from "../domain/model/safetensors.ts"
import { AnnouncementRefused, claimedPart, decideAnnouncement, parseAnnouncement, type Announcement } from "../domain/network/announcement.ts"
import { disagreement } from "../domain/network/agreement.ts"
import { Subjects } from "../domain/network/subjects.ts"
import { foldStream, handleCommand } from "./command.ts"
import { callExpert } from "./expert-service.ts"
import { serveOwnerRequests } from "./owner-requests.ts"

const AnnouncementProjection = sideBySide("announcements", { nodes: NodesProjection, model: ModelProjection })

/** The node computes each expert it claims, on a random row, as the owner does from the block. */
const checkPossession = (a: Announcement, state: { nodes: NodesState; model: ModelState }, expertModels: (m: ChosenModel) => ExpertModel, timeoutMs: number) =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const publicKey = state.nodes.get(a.node)!.publicKey
    for (const h of a.hosted) {
      const part = claimedPart(h)
      const model = expertModels(yield* Either.mapLeft(chooseModel(state.model, h.model ?? BUILTIN_MODEL), AnnouncementRefused.because))
      const payload = state.model.current.get(part)!.payload
      const forward = yield* Either.mapLeft(model.runner(h.layer, h.expert, yield* decodePart(yield* blobs.get(payload))), (why) => AnnouncementRefused.because(`block ${h.block.slice(0, 16)}… of ${part}: ${why}`))
      const x = Float32Array.from(randomBytes(model.width), (b) => (b - 127.5) / 64)
      const expected = yield* forward(x, 1)
      const answered = yield* Effect.either(
        callExpert({ requestId: `admission-${randomBytes(8).toString("hex")}`, node: a.node, layer: h.layer, expert: h.expert, block: h.block, rows: 1, x, width: model.width, timeoutMs, publicKeyOf: () => publicKey })
      )
      if (Either.isLeft(answered)) return yield* AnnouncementRefused.because(`node ${a.node} did not compute ${part} with block ${h.block.slice(0, 16)}…: ${answered.left.message}`)
      const differs = disagreement(answered.right.y, expected)
      if (differs !== undefined) return yield* AnnouncementRefused.because(`node ${a.node}'s ${part} does not compute block ${h.block.slice(0, 16)}…: ${differs}`)
    }
  })

/** Decide announcements until the scope closes. */
export const serveAnnouncements = (timeoutMs: number) => {
  const expertModels = makeExpertModels()
  return serveOwnerRequests(Subjects.nodeAnnounce, "AnnouncementRefused", (text) =>
    Effect.gen(function* () {
      const a = yield* parseAnnouncement(text)
      const { state } = yield* foldStream("*", AnnouncementProjection)
      yield* decideAnnouncement(state.nodes, state.model, a)
      if (a.kind === "serving") yield* checkPossession(a, state, expertModels, timeoutMs)
      yield* handleCommand({ stream: Streams.node(a.node), projection: AnnouncementProjection, reads: "log", decide: (s) => decideAnnouncement(s.nodes, s.model, a) })
    })
  )
}

/**
 * A training run's state: the weights and AdamW state after some step of a run, as one
 * safetensors blob, so that a run cut off by a restart resumes exactly where its last checkpoint
 * left it. Weights keep their storage dtype (AdamW already rounded them to it); moments are f32.
 * Each moment's own step count rides in the metadata, as bias correction needs it.
 */
import { Either, Schema } from "effect"
import type { AdamWState, Moments } from "./adamw.ts"
import { decodeSafetensors, encodeSafetensors, fromSt, toSt, type StTensor } from "./safetensors.ts"
import { assembleWeights, type ModelWeights, type Part, type Tensor } from "./tensor.ts"
import type { ModelSpec } from "./spec.ts"

export interface TrainingState {
  /** Optimiser steps taken when it was written. */
  readonly step: number
  readonly weights: ModelWeights
  readonly state: AdamWState
}

/** The bytes are not a checkpoint of this model. */
export class CheckpointUnreadable extends Schema.TaggedError<CheckpointUnreadable>()("CheckpointUnreadable", { message: Schema.String }) {}

// Tensor names: `w:<part>:<tensor>` for weights, `m:<key>` and `v:<key>` for a moment keyed `part/tensor`.
const STEP = "blyan.step"
const STEPS = "blyan.moment-steps"

export const encodeCheckpoint = ({ step, weights, state }: TrainingState): Uint8Array => {
  const tensors: Record<string, StTensor> = {}
  for (const part of weights.parts.values())
    for (const [name, t] of Object.entries(part.tensors)) tensors[`w:${part.name}:${name}`] = { dtype: toSt[t.dtype], shape: t.shape, data: t.data }
  const steps: Record<string, number> = {}
  for (const [key, m] of state.moments) {
    tensors[`m:${key}`] = { dtype: "F32", shape: [m.m.length], data: m.m }
    tensors[`v:${key}`] = { dtype: "F32", shape: [m.v.length], data: m.v }
    steps[key] = m.t
  }
  return encodeSafetensors(tensors, { [STEP]: String(step), [STEPS]: JSON.stringify(steps) })
}

const unreadable = (why: string) => Either.left(new CheckpointUnreadable({ message: `not a checkpoint of this model: ${why}` }))

/** A checkpoint back, its weights checked against `spec` part by part. */
export const decodeCheckpoint = (spec: ModelSpec, bytes: Uint8Array): Either.Either<TrainingState, CheckpointUnreadable> => {
  const st = decodeSafetensors(bytes)
  if (Either.isLeft(st)) return unreadable(st.left.message)
  const { metadata, tensors } = st.right
  const step = Number(metadata[STEP])
  if (!Number.isSafeInteger(step) || step < 0) return unreadable(`its step ${JSON.stringify(metadata[STEP])} is not a count`)
  let steps: Record<string, unknown>
  try {
    steps = JSON.parse(metadata[STEPS] ?? "")
  } catch {
    return unreadable("its moments' step counts are not JSON")
  }
  const parts = new Map<string, Record<string, Tensor>>()
  const halves = new Map<string, { m?: Float32Array; v?: Float32Array }>()
  for (const [name, t] of Object.entries(tensors)) {
    const [kind, ...rest] = name.split(":")
    if (kind === "w" && rest.length === 2) {
      const [part, tensor] = rest as [string, string]
      const p = parts.get(part) ?? {}
      p[tensor] = { dtype: fromSt[t.dtype], shape: t.shape, data: t.data }
      parts.set(part, p)
    } else if ((kind === "m" || kind === "v") && rest.length === 1) {
      const h = halves.get(rest[0]!) ?? {}
      h[kind] = t.data
      halves.set(rest[0]!, h)
    } else return unreadable(`unknown tensor ${JSON.stringify(name)}`)
  }
  const moments = new Map<string, Moments>()
  for (const [key, { m, v }] of halves) {
    const t = steps[key]
    if (m === undefined || v === undefined || m.length !== v.length) return unreadable(`moment ${key} lacks a half or its halves differ in size`)
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 1) return unreadable(`moment ${key} has no step count`)
    moments.set(key, { m, v, t })
  }
  const weights = assembleWeights(spec, [...parts].map(([name, tensors]): Part => ({ name, tensors })))
  if (Either.isLeft(weights)) return unreadable(weights.left.message)
  return Either.right({ step, weights: weights.right, state: { moments } })
}

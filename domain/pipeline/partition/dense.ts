import { radices } from "./problem.ts"
import type { Tables } from "./tables.ts"

/**
 * The dense dynamic programme over every multiset of used devices (by class counts, one
 * mixed-radix number per multiset). Exact by construction (see `Tables`); its cost is
 * states × classes, independent of how tight the threshold is.
 */

/**
 * reach[S] = the farthest position any order of S gets to (fact 1). Returns a class sequence
 * with the fewest stages (at most `budget`), or undefined.
 */
export const denseSolve = (t: Tables, budget: number): ReadonlyArray<number> | undefined => {
  const { pb } = t
  const C = pb.classes.length
  const { radix, states } = radices(pb)
  const reach = new Int32Array(states)
  const choice = new Int8Array(states).fill(-1)
  const counts = new Int32Array(C)
  const size = new Int32Array(states)
  let best = -1
  for (let s = 0; s < states; s++) {
    if (s > 0) {
      // odometer increment of counts
      for (let c = 0; c < C; c++) {
        if (counts[c]! < pb.classes[c]!.members.length) {
          counts[c]!++
          break
        }
        counts[c] = 0
      }
      let r = 0
      let arg = -1
      let sz = 0
      for (let c = 0; c < C; c++) {
        if (counts[c] === 0) continue
        const prev = s - radix[c]!
        sz = size[prev]! + 1
        const q = t.jump[c]![reach[prev]!]!
        if (q > r || arg < 0) {
          r = q
          arg = c
        }
      }
      reach[s] = r
      choice[s] = arg
      size[s] = sz
    }
    if (reach[s] === pb.L && size[s]! <= budget && (best < 0 || size[s]! < size[best]!)) best = s
  }
  if (best < 0) return undefined
  const seq: number[] = []
  for (let s = best; s > 0; s -= radix[choice[s]!]!) seq.push(choice[s]!)
  return seq.reverse()
}

/** first[c][m]: the first p ≥ 1 whose maximal stage on class c reaches m (jump is non-decreasing on 1..L). */
const firstReaching = (t: Tables): ReadonlyArray<Int32Array> => {
  const L = t.pb.L
  return t.jump.map((j) => {
    const f = new Int32Array(L + 2).fill(L + 1)
    let p = 1
    for (let m = 0; m <= L; m++) {
      while (p <= L && j[p]! < m) p++
      f[m] = p
    }
    return f
  })
}

/**
 * need[S]: the nearest position from which the devices not in multiset S finish with at most
 * stages − |S| more stages; by fact 1 every position from need[S] on works, so need[S] = min
 * over unused classes c of the first p whose stage on c reaches need[S + c]. A non-empty S
 * stands at a position ≥ 1, where fact 1 holds; the empty set only at 0, where the first stage
 * sends a link less: need[∅] is 0 when some class's first stage reaches need[{c}], else past L.
 */
const needTable = (t: Tables, stages: number): Int32Array => {
  const { L, classes } = t.pb
  const C = classes.length
  const { radix, states } = radices(t.pb)
  const first = firstReaching(t)
  const need = new Int32Array(states)
  const counts = new Int32Array(C)
  let size = 0
  classes.forEach((k, c) => {
    counts[c] = k.members.length
    size += k.members.length
  })
  for (let s = states - 1; s >= 0; s--) {
    if (s < states - 1) {
      // odometer decrement of counts
      for (let c = 0; c < C; c++) {
        if (counts[c]! > 0) {
          counts[c]!--
          size--
          break
        }
        counts[c] = classes[c]!.members.length
        size += classes[c]!.members.length
      }
    }
    if (size > stages) need[s] = L + 1
    else if (size === stages) need[s] = L
    else if (s === 0) need[s] = classes.some((_, c) => t.jump[c]![0]! >= need[radix[c]!]!) ? 0 : L + 1
    else {
      let n = L
      for (let c = 0; c < C; c++) if (counts[c]! < classes[c]!.members.length) n = Math.min(n, first[c]![need[s + radix[c]!]!]!)
      need[s] = n
    }
  }
  return need
}

/**
 * The lexicographically first class sequence (by device index) of `stages` stages, the fewest.
 * Walking forward, each step takes the smallest unused device index whose stage keeps the walk
 * at or beyond need of the new set: with an exact completion test, greedy is lexicographic.
 */
export const denseLex = (t: Tables, stages: number): ReadonlyArray<number> | undefined => {
  const { L, classes } = t.pb
  const C = classes.length
  const { radix } = radices(t.pb)
  const need = needTable(t, stages)
  if (need[0]! !== 0) return undefined
  const seq: number[] = []
  const used = new Int32Array(C)
  let s = 0
  let p = 0
  while (p < L) {
    let pick = -1
    for (let c = 0; c < C; c++) {
      const k = classes[c]!
      if (used[c]! >= k.members.length) continue
      const q = t.jump[c]![p]!
      if (q > p && q >= need[s + radix[c]!]! && (pick < 0 || k.members[used[c]!]! < classes[pick]!.members[used[pick]!]!)) pick = c
    }
    if (pick < 0) return undefined
    seq.push(pick)
    p = t.jump[pick]![p]!
    s += radix[pick]!
    used[pick]!++
  }
  return seq
}

/**
 * CLI start benchmark (run: `npx tsx bench/cli.ts`), written to bench/results/cli.json: the wall time
 * and peak memory of `blyan --help` and `blyan events --json` on a fresh ledger, as users run them
 * (`node bin/blyan.mjs`, the bundle in dist/), against `node -e 0` measured in the same run, the
 * three interleaved so that a busy moment of the machine hits each alike. For scale, the same two
 * commands run from the TypeScript sources through tsx (how the CLI started before it was built).
 *
 * The goal: both commands within 5× `node -e 0`.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"

const RUNS = Number(process.env.BENCH_RUNS ?? 15)
const SOURCE_RUNS = Number(process.env.BENCH_SOURCE_RUNS ?? 5)
const GOAL = 5

const repo = path.resolve(import.meta.dirname, "..")
const bin = path.join(repo, "bin", "blyan.mjs")
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

/** Peak RSS and CPU time come from GNU time when the machine has it; Node cannot read a child's rusage. */
const gnuTime = fs.existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined

const run = (args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, args, { cwd: repo, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr.toString()}`)
  return r
}

/** Milliseconds from spawn to exit. */
const wall = (args: ReadonlyArray<string>) => {
  const t0 = performance.now()
  run(args)
  return performance.now() - t0
}

/**
 * Peak resident memory in MB and CPU time (user + system, 10 ms resolution) in ms, or undefined
 * without GNU time. CPU time is the cross-check for a busy machine, where wall time also counts
 * the waits for a core.
 */
const usage = (args: ReadonlyArray<string>) => {
  if (!gnuTime) return undefined
  const r = spawnSync(gnuTime, ["-f", "%M %U %S", process.execPath, ...args], { cwd: repo, stdio: ["ignore", "ignore", "pipe"] })
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr.toString()}`)
  const [kb, user, sys] = r.stderr.toString().trim().split("\n").at(-1)!.split(" ").map(Number) as [number, number, number]
  return { rssMb: kb / 1024, cpuMs: (user + sys) * 1000 }
}

// What users run must be what was just built from these sources.
run([path.join(repo, "scripts", "build.mjs")])

const data = fs.mkdtempSync(path.join(os.tmpdir(), "blyan-bench-cli-"))
run([bin, "init", "--data", data])

const cases = {
  "node -e 0": ["-e", "0"],
  "blyan --help": [bin, "--help"],
  "blyan events --json": [bin, "events", "--json", "--data", data]
} as const
const fromSources = {
  "blyan --help": ["--import", "tsx", "infra/cli/main.ts", "--help"],
  "blyan events --json": ["--import", "tsx", "infra/cli/main.ts", "events", "--json", "--data", data]
} as const
type Case = keyof typeof cases

const wallMs = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]])) as Record<Case, number[]>
const rssMb = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]])) as Record<Case, number[]>
const cpuMs = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]])) as Record<Case, number[]>
for (const args of Object.values(cases)) run(args) // warm the file cache
console.log(`${RUNS} interleaved runs of each; wall ms (peak RSS MB, CPU ms)`)
for (let i = 0; i < RUNS; i++) {
  const line: string[] = []
  for (const [name, args] of Object.entries(cases) as Array<[Case, ReadonlyArray<string>]>) {
    const ms = wall(args)
    const used = usage(args)
    wallMs[name].push(ms)
    if (used !== undefined) {
      rssMb[name].push(used.rssMb)
      cpuMs[name].push(used.cpuMs)
    }
    line.push(`${name} ${round(ms, 1)}${used === undefined ? "" : ` (${round(used.rssMb, 1)}, ${round(used.cpuMs)})`}`)
  }
  console.log(`  run ${String(i + 1).padStart(2)}: ${line.join(", ")}`)
}

const sourcesMs = Object.fromEntries(
  Object.entries(fromSources).map(([name, args]) => [name, median(Array.from({ length: SOURCE_RUNS }, () => wall(args)))])
) as Record<keyof typeof fromSources, number>

const baseline = median(wallMs["node -e 0"])
const cpuBaseline = cpuMs["node -e 0"].length > 0 ? median(cpuMs["node -e 0"]) : undefined
const summary = Object.fromEntries(
  (Object.keys(cases) as Case[]).map((name) => [
    name,
    {
      wallMsMedian: round(median(wallMs[name]), 1),
      wallMsMin: round(Math.min(...wallMs[name]), 1),
      peakRssMbMedian: rssMb[name].length > 0 ? round(median(rssMb[name]), 1) : null,
      overNodeE0: round(median(wallMs[name]) / baseline, 2),
      cpuMsMedian: cpuBaseline === undefined ? null : round(median(cpuMs[name])),
      cpuOverNodeE0: cpuBaseline === undefined ? null : round(median(cpuMs[name]) / cpuBaseline, 2)
    }
  ])
)
const sources = Object.fromEntries(
  Object.entries(sourcesMs).map(([name, ms]) => [name, { wallMsMedian: round(ms, 1), overNodeE0: round(ms / baseline, 2), runs: SOURCE_RUNS }])
)
const met = summary["blyan --help"]!.overNodeE0 <= GOAL && summary["blyan events --json"]!.overNodeE0 <= GOAL

for (const [name, s] of Object.entries(summary))
  console.log(`${name.padEnd(20)} median ${s.wallMsMedian} ms, ${s.overNodeE0}× node -e 0; peak RSS ${s.peakRssMbMedian ?? "n/a"} MB; CPU ${s.cpuMsMedian ?? "n/a"} ms, ${s.cpuOverNodeE0 ?? "n/a"}×`)
for (const [name, s] of Object.entries(sources)) console.log(`${name.padEnd(20)} from sources (tsx): median ${s.wallMsMedian} ms, ${s.overNodeE0}× node -e 0`)
console.log(`goal (both within ${GOAL}× node -e 0): ${met ? "met" : "NOT met"}`)

const result = {
  at: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model ?? "unknown", cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, node: process.version },
  runs: RUNS,
  goal: `blyan --help and blyan events --json (fresh ledger) within ${GOAL}× node -e 0`,
  met,
  built: summary,
  fromSourcesWithTsx: sources
}
const out = path.join(import.meta.dirname, "results", "cli.json")
fs.writeFileSync(out, JSON.stringify(result, null, 2) + "\n")
fs.rmSync(data, { recursive: true, force: true })
console.log(`wrote ${out}`)

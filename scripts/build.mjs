/**
 * Builds the CLI into dist/ (run by `npm run build`, by `npm ci` through `prepare`, and before every
 * test run by test/support/build-setup.ts). One esbuild bundle with code splitting: the entry loads
 * only what `--help` and the light commands need, and each `import()` of a heavy module becomes a
 * chunk loaded by the command that uses it. Entries and chunks all sit at the root of dist/, so
 * code in any chunk finds a sibling entry (the envelope worker) at `new URL("./x.js", import.meta.url)`.
 *
 * Plain JavaScript so that it needs no compile step of its own.
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(root, "dist")

/** Entry name (dist/<name>.js) to source: the CLI, and the audit's verification worker. */
const entries = { main: "infra/cli/main.ts", "envelope-worker": "adapters/verify/envelope-worker.ts" }

/**
 * Loaded from node_modules at run time, never bundled: native addons (onnxruntime-node, fs-ext),
 * network clients that only some stores use (@eventstore/db-client with its gRPC stack, nats), and
 * onnx-proto, whose protobufjs finds its optional modules (long, for 64-bit integers) through a
 * require() that an ESM bundle does not have: bundled, it would quietly run without them.
 */
const external = ["onnxruntime-node", "fs-ext", "@eventstore/db-client", "nats", "onnx-proto"]

/**
 * `import { Effect, Schema } from "effect"` names modules that the package's index re-exports as
 * namespaces (`export * as Effect from "./Effect.js"`). esbuild cannot tree-shake through such
 * re-exports: it keeps every export of every module named, about 1.4 MB of effect alone, all parsed
 * at each start. This rewrites those imports in our sources to `import * as Effect from "effect/Effect"`
 * (the same module, under the package's own subpath export), which esbuild does tree-shake. Names the
 * index exports directly (`pipe`, `flow`…) and `type` imports stay as they were.
 */
const barrelPackages = ["effect", "@effect/cli", "@effect/platform", "@effect/platform-node"]
const subpaths = new Map(
  barrelPackages.map((pkg) => {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "node_modules", pkg, "package.json"), "utf8"))
    return [pkg, new Set(Object.keys(manifest.exports ?? {}).map((k) => k.slice(2)))]
  })
)
const namedImport = new RegExp(String.raw`import\s*\{([^}]*)\}\s*from\s*"(${barrelPackages.join("|")})"`, "g")
const specifier = /^(type\s+)?[A-Za-z_$][\w$]*(\s+as\s+[A-Za-z_$][\w$]*)?$/
const rewriteBarrelImports = (source, file) =>
  source.replace(namedImport, (statement, names, pkg) => {
    const modules = []
    const kept = []
    for (const spec of names.split(",").map((n) => n.trim()).filter((n) => n.length > 0)) {
      if (!specifier.test(spec)) throw new Error(`${file}: cannot rewrite \`${spec}\` in an import from "${pkg}"; name one binding per specifier, without comments`)
      const [name, alias = name] = spec.split(/\s+as\s+/)
      if (!spec.startsWith("type ") && subpaths.get(pkg).has(name)) modules.push(`import * as ${alias} from "${pkg}/${name}"`)
      else kept.push(spec)
    }
    // One line for the lot, then the statement's own line breaks, so source maps keep their lines.
    const lines = "\n".repeat(statement.split("\n").length - 1)
    return [...modules, ...(kept.length > 0 ? [`import { ${kept.join(", ")} } from "${pkg}"`] : [])].join("; ") + lines
  })
const subpathImports = {
  name: "subpath-imports",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined
      return { contents: rewriteBarrelImports(fs.readFileSync(args.path, "utf8"), args.path), loader: "ts", resolveDir: path.dirname(args.path) }
    })
  }
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: entries,
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  chunkNames: "chunk-[hash]",
  // CommonJS code in the bundle (ws, under the HTTP server) requires Node's built-ins at run time:
  // an ES module has no require of its own, so each file gets one.
  banner: { js: 'import { createRequire as __blyanRequire } from "node:module"; const require = __blyanRequire(import.meta.url);' },
  sourcemap: "linked",
  plugins: [subpathImports],
  write: false,
  logLevel: "warning"
}).catch(() => {
  // esbuild has printed the errors. Sources that do not build leave no CLI rather than an older one:
  // bin/blyan.mjs then says to build, and no test runs code that is not what the sources say.
  for (const name of Object.keys(entries)) fs.rmSync(path.join(dist, `${name}.js`), { force: true })
  process.exit(1)
})

/**
 * The explorer's page: `web/app.ts` bundled for the browser (it shares the log's hash definition
 * with the store, from domain/ledger), beside its `index.html`, into dist/web.
 */
const page = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: "web/app.ts" },
  outdir: path.join(dist, "web"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: "linked",
  write: false,
  logLevel: "warning"
}).catch(() => process.exit(1))
result.outputFiles.push(...page.outputFiles, { path: path.join(dist, "web", "index.html"), contents: fs.readFileSync(path.join(root, "web", "index.html")) })

/**
 * Write only what changed, each file through a rename so that a CLI starting meanwhile never reads
 * half a file, chunks before entries so that a new entry never names a chunk not there yet.
 */
fs.mkdirSync(path.join(dist, "web"), { recursive: true })
const isEntry = (file) => Object.hasOwn(entries, path.basename(file.path, ".js"))
for (const file of [...result.outputFiles].sort((a, b) => Number(isEntry(a)) - Number(isEntry(b)))) {
  if (fs.existsSync(file.path) && Buffer.compare(fs.readFileSync(file.path), file.contents) === 0) continue
  const tmp = `${file.path}.${process.pid}.tmp`
  fs.writeFileSync(tmp, file.contents)
  fs.renameSync(tmp, file.path)
}

/**
 * Files of earlier builds go once they have been out of the build for a while, not at once: tests
 * rebuild dist/ while other runs' CLIs are using it, and a CLI started from the previous main.js
 * still loads that build's chunks. `.stale.json` notes when each file left the build.
 */
const STALE_GRACE_MS = 10 * 60_000
const staleNote = path.join(dist, ".stale.json")
const current = new Set([...result.outputFiles.map((f) => path.relative(dist, f.path).split(path.sep)[0]), path.basename(staleNote)])
const leftAt = fs.existsSync(staleNote) ? JSON.parse(fs.readFileSync(staleNote, "utf8")) : {}
const now = Date.now()
const stillStale = {}
for (const name of fs.readdirSync(dist).filter((n) => !current.has(n))) {
  const since = leftAt[name] ?? now
  if (now - since > STALE_GRACE_MS) fs.rmSync(path.join(dist, name), { recursive: true, force: true })
  else stillStale[name] = since
}
const tmpNote = `${staleNote}.${process.pid}.tmp`
fs.writeFileSync(tmpNote, JSON.stringify(stillStale, null, 1) + "\n")
fs.renameSync(tmpNote, staleNote)

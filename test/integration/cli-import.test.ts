import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { segmentPath } from "../../adapters/eventstore/file-layout.ts"
import { parseSafetensors } from "../../domain/model/safetensors.ts"
import { blyan } from "../support/cli.ts"
import { tinyMixtralConfig, tinyQwen3MoeConfig } from "../support/family-weights.ts"
import { writeHfCheckpoint } from "../support/hf-checkpoint.ts"
import { tempDir } from "../support/tmp.ts"

/** Every tensor of the checkpoint in `dir`: its dtype, shape and stored bytes, by name. */
const tensorsIn = (dir: string) => {
  const out = new Map<string, string>()
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".safetensors"))) {
    const st = Either.getOrThrow(parseSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, file)))))
    for (const e of st.entries) out.set(e.name, `${e.dtype} [${e.shape}] ${Buffer.from(st.buffer.subarray(e.begin, e.end)).toString("base64")}`)
  }
  return out
}

describe("blyan import --hf and export --hf", () => {
  it("imports both families beside the built-in model, audits clean, imports again recording nothing, and exports each back tensor for tensor", async () => {
    const root = tempDir("blyan-cli-import-")
    const env = { BLYAN_HOME: path.join(root, "home") }
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    for (const [name, config, shards] of [["tiny-mixtral", tinyMixtralConfig, 0], ["tiny-qwen", tinyQwen3MoeConfig, 2]] as const) {
      const c = writeHfCheckpoint(path.join(root, name), config, { shards })
      const r = await blyan(["import", "--hf", c.dir, "--json", "--data", data], env)
      expect(r.code, r.stderr).toBe(0)
      const report = JSON.parse(r.stdout) as { name: string; blocks: number; appended: number; spec: { family: string } }
      expect(report).toMatchObject({ name, appended: report.blocks, spec: { family: config.model_type } })
      const log = fs.readFileSync(segmentPath(data))
      const again = JSON.parse((await blyan(["import", "--hf", c.dir, "--json", "--data", data], env)).stdout) as { appended: number }
      expect(again.appended).toBe(0)
      expect(fs.readFileSync(segmentPath(data)).equals(log)).toBe(true)
      const out = path.join(root, `${name}-out`)
      const e = await blyan(["export", "--hf", out, "--model", name, "--data", data], env)
      expect(e.code, e.stderr).toBe(0)
      expect(tensorsIn(out)).toEqual(tensorsIn(c.dir))
      for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(c.dir, f)))).toBe(true)
    }
    const models = JSON.parse((await blyan(["models", "--json", "--data", data], env)).stdout) as ReadonlyArray<{ name: string; family: string; layers: number; latest: boolean }>
    expect(models.map((m) => [m.name, m.family, m.latest])).toEqual([["blyan-moe", "blyan-moe", false], ["tiny-mixtral", "mixtral", false], ["tiny-qwen", "qwen3_moe", true]])
    expect(models[2]!.layers).toBe(tinyQwen3MoeConfig.num_hidden_layers)
    const chat = await blyan(["chat", "the theater", "--model", "tiny-qwen", "--max-tokens", "5", "--temperature", "0", "--json", "--data", data], env)
    expect(chat.code, chat.stderr).toBe(0)
    const answer = JSON.parse(chat.stdout) as { text: string; tokens: number[]; experts: Array<{ token: number; layer: number; block: string }> }
    expect(answer.tokens).toHaveLength(5)
    expect(answer.experts).toHaveLength(5 * tinyQwen3MoeConfig.num_hidden_layers * tinyQwen3MoeConfig.num_experts_per_tok)
    const audit = await blyan(["audit", "--json", "--data", data], env)
    expect(audit.code, audit.stderr).toBe(0)
    expect(JSON.parse(audit.stdout)).toMatchObject({ ok: true, orphans: 0, badBlobs: [] })
  })

  it("refuses a bad checkpoint naming why, and usage errors, recording nothing", async () => {
    const root = tempDir("blyan-cli-import-")
    const env = { BLYAN_HOME: path.join(root, "home") }
    const data = path.join(root, "ledger")
    expect((await blyan(["init", "--data", data], env)).code).toBe(0)
    const log = fs.readFileSync(segmentPath(data))
    const nan = writeHfCheckpoint(path.join(root, "nan"), tinyQwen3MoeConfig, { alter: (w) => (w.get("model.layers.1.mlp.gate.weight")!.data[2] = NaN) })
    const good = writeHfCheckpoint(path.join(root, "good"), tinyQwen3MoeConfig)
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, number, string]> = [
      [["import", "--hf", nan.dir], 1, `tensor "model.layers.1.mlp.gate.weight" (of layer1.router) holds NaN or infinity at value 2`],
      [["import", "--hf", path.join(root, "absent")], 1, "does not exist"],
      [["export", "--hf", path.join(root, "out")], 2, "--hf DIR and --model NAME go together"],
      [["export", "--hf", path.join(root, "out"), "--model", "nope"], 1, `the ledger holds no model named "nope" (it holds blyan-moe)`],
      [["export", "--hf", path.join(root, "out"), "--model", "blyan-moe"], 1, "blyan-moe is the built-in model, not an imported one"],
      [["chat", "hi", "--model", "nope"], 1, `the ledger holds no model named "nope" (it holds blyan-moe)`],
      [["import", "--hf", good.dir, "--name", "blyan-moe"], 1, "blyan-moe names the built-in model"]
    ]
    for (const [args, code, message] of cases) {
      const r = await blyan([...args, "--data", data], env)
      expect(r.code, r.stderr).toBe(code)
      expect(r.stderr).toContain(message)
    }
    expect(fs.readFileSync(segmentPath(data)).equals(log)).toBe(true)
  })
})

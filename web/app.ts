/**
 * The explorer's page: what the API's read models say, kept live by the log's server-sent events,
 * and the log verified here (see verify.ts). Plain DOM: the page is small.
 */
import { byteEscape, segmentUtf8 } from "./utf8.ts"
import { verifyLog, type StoredEnvelope } from "./verify.ts"

type Block = { seq: number; name: string; hash: string }

const $ = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!
const json = async <A>(path: string): Promise<A> => {
  const r = await fetch(path)
  if (!r.ok) throw new Error(`${path}: ${r.status}`)
  return (await r.json()) as A
}
const cell = (text: string, hash = false) => {
  const td = document.createElement("td")
  td.textContent = text
  if (hash) td.className = "hash"
  return td
}
const row = (...cells: HTMLElement[]) => {
  const tr = document.createElement("tr")
  tr.append(...cells)
  return tr
}
const short = (hash: string) => `${hash.slice(0, 16)}…`

const blockRow = (b: Block) => {
  const tr = row(cell(String(b.seq)), cell(b.name), cell(short(b.hash), true))
  tr.dataset.block = b.hash
  return tr
}

const showBlocks = async () => {
  const first = await json<{ total: number }>("/api/chains/B/blocks?limit=1")
  const from = Math.max(0, first.total - 50)
  const page = await json<{ items: Block[] }>(`/api/chains/B/blocks?cursor=${from}&limit=50`)
  $("blocks").replaceChildren(...page.items.reverse().map(blockRow))
}

const showHistory = async (name: string) => {
  const h = await json<{ name: string; current: string; versions: Array<{ block: string; seq: number; reason: string; dependsOn: string[] }> }>(`/api/experts/${encodeURIComponent(name)}/history`)
  const table = document.createElement("table")
  table.append(...h.versions.map((v) => row(cell(String(v.seq)), cell(short(v.block), true), cell(v.reason), cell(`on ${v.dependsOn.map(short).join(", ")}`, true))))
  const title = document.createElement("p")
  title.textContent = `${h.name}: ${h.versions.length} version(s), current ${short(h.current)}`
  $("history").replaceChildren(title, table)
}

/** The models chat may ask for: the latest by default, or one by name. */
const showModels = (models: ReadonlyArray<{ name: string; family: string }>, latest: string | null) => {
  const select = $("model") as HTMLSelectElement
  const chosen = select.value
  const option = (value: string, text: string) => Object.assign(document.createElement("option"), { value, textContent: text })
  select.replaceChildren(option("", `latest${latest === null ? "" : ` (${latest})`}`), ...models.map((m) => option(m.name, `${m.name} (${m.family})`)))
  select.value = models.some((m) => m.name === chosen) ? chosen : ""
}

const showModel = async () => {
  const m = await json<{ parts: Array<{ name: string; block: string }>; models: Array<{ name: string; family: string }>; latest: string | null }>("/api/model")
  showModels(m.models, m.latest)
  $("parts").replaceChildren(
    ...m.parts.map((p) => {
      const name = cell("")
      const link = document.createElement("a")
      link.href = "#"
      link.textContent = p.name
      link.onclick = (e) => {
        e.preventDefault()
        void showHistory(p.name)
      }
      name.append(link)
      return row(name, cell(short(p.block), true))
    })
  )
}

type RoundDetail = {
  round: string
  contributions: Array<{ contribution: string; outcome: string; reason: string | null; verdicts: Array<{ validator: string; passes: boolean; improvement: number; wins: number; batches: number }> }>
}

/** One round's line: each contribution's outcome and reason, and every validator's verdict. */
const roundLine = (r: RoundDetail) => {
  const p = document.createElement("div")
  p.dataset.round = r.round
  p.textContent = r.contributions
    .map(
      (c) =>
        `${r.round}: ${c.outcome}${c.reason === null ? "" : ` (${c.reason})`}; ` +
        c.verdicts.map((v) => `${short(v.validator)} ${v.passes ? "pass" : "fail"} ${(v.improvement * 100).toFixed(2)}% ${v.wins}/${v.batches}`).join("; ")
    )
    .join(" | ")
  return p
}

const roundDetail = (id: string) => json<RoundDetail>(`/api/rounds/${encodeURIComponent(id)}`)

const showRounds = async () => {
  const rounds = await json<Array<{ round: string }>>("/api/rounds")
  const details = await Promise.all(rounds.map((r) => roundDetail(r.round)))
  $("rounds").replaceChildren(...details.map(roundLine))
  if (details.length === 0) $("rounds").textContent = "No rounds yet."
}

/** The latest fetch of each round: an earlier one answering later is not shown over it. */
const roundFetches = new Map<string, number>()

/** A round's event: only that round is fetched again, its line replaced or added. */
const showRound = async (id: string) => {
  const mine = (roundFetches.get(id) ?? 0) + 1
  roundFetches.set(id, mine)
  const detail = await roundDetail(id)
  if (roundFetches.get(id) !== mine) return
  const line = roundLine(detail)
  const known = [...$("rounds").querySelectorAll<HTMLElement>("[data-round]")].find((e) => e.dataset.round === id)
  if (known !== undefined) known.replaceWith(line)
  else if ($("rounds").querySelector("[data-round]") === null) $("rounds").replaceChildren(line)
  else $("rounds").append(line)
}

const showNodes = async () => {
  const nodes = await json<Array<{ node: string; status: string; served: number; earned: string }>>("/api/nodes")
  $("nodes").replaceChildren(...nodes.map((n) => row(cell(n.node), cell(n.status), cell(String(n.served)), cell(n.earned))))
}

type Attributed = { index: number; token: number; text?: string; experts: Array<{ layer: number; expert: number; weight: number; block: string; node?: string; request?: string }> }

/** The server-sent events of a POST, each with its name and data, as they arrive. */
async function* postedEvents(path: string, body: unknown): AsyncIterable<{ event: string; data: unknown }> {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`)
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n")
      buffer = buffer.slice(end + 2)
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2)
      const data = field("data")
      if (data !== undefined) yield { event: field("event") ?? "message", data: JSON.parse(data) }
    }
  }
}

/** Which experts produced these tokens: per token and layer, the expert, its gate weight, block and node. */
const showAttribution = (tokens: ReadonlyArray<Attributed>) => {
  const table = document.createElement("table")
  const head = row(...[tokens.some((t) => t.text !== undefined) ? "token" : "byte", "layer", "expert", "gate", "block", "node"].map((h) => cell(h)))
  table.append(head)
  for (const t of tokens)
    for (const e of t.experts) table.append(row(cell(t.text === undefined ? `#${t.index} 0x${t.token.toString(16).padStart(2, "0")}` : `#${t.index} id ${t.token}`), cell(String(e.layer)), cell(String(e.expert)), cell(e.weight.toFixed(3)), cell(short(e.block), true), cell(e.node ?? "this process")))
  $("attribution").replaceChildren(table)
}

/** The answer so far with a tokenizer's tokens: each token's text, choosing its attribution. */
const tokenSpans = (tokens: ReadonlyArray<Attributed>) =>
  tokens.map((t, i) => {
    const span = document.createElement("span")
    span.textContent = t.text ?? ""
    // A token that adds no text yet (part of a character, or one the tokenizer spells as nothing) is still there to choose.
    if (span.textContent === "") {
      span.className = "empty"
      span.title = "a token that adds no text"
    }
    span.dataset.tokens = `${i}-${i}`
    span.onclick = () => choose(span, [t])
    return span
  })

const choose = (span: HTMLElement, tokens: ReadonlyArray<Attributed>) => {
  for (const other of $("answer").querySelectorAll(".chosen")) other.classList.remove("chosen")
  span.classList.add("chosen")
  showAttribution(tokens)
}

/** The answer so far: its characters (or a tokenizer's tokens), each choosing its attribution; invalid bytes shown as escapes. */
const showAnswer = (tokens: ReadonlyArray<Attributed>, final: boolean) => {
  if (tokens.some((t) => t.text !== undefined)) return $("answer").replaceChildren(...tokenSpans(tokens))
  const spans = segmentUtf8(tokens.map((t) => t.token), final).map((s) => {
    const span = document.createElement("span")
    // A control character other than a line break or tab would not be seen: it is shown as its escape too.
    const control = s.valid && /^[\x00-\x08\x0b-\x1f\x7f]$/.test(s.text)
    span.textContent = control ? byteEscape(s.text.charCodeAt(0)) : s.text
    if (!s.valid) {
      span.className = "invalid"
      span.title = "a byte that is not UTF-8"
    } else if (control) {
      span.className = "control"
      span.title = "a control character"
    }
    span.dataset.tokens = `${s.start}-${s.start + s.length - 1}`
    span.onclick = () => choose(span, tokens.slice(s.start, s.start + s.length))
    return span
  })
  $("answer").replaceChildren(...spans)
}

const unit = (tokens: ReadonlyArray<Attributed>) => (tokens.some((t) => t.text !== undefined) ? "token(s)" : "byte(s)")

const sendChat = async () => {
  const status = $("chat-status")
  const prompt = ($("prompt") as HTMLTextAreaElement).value
  const maxTokens = Number(($("max-tokens") as HTMLInputElement).value)
  const temperature = Number(($("temperature") as HTMLInputElement).value)
  const model = ($("model") as HTMLSelectElement).value
  const tokens: Attributed[] = []
  status.className = ""
  status.textContent = "asking the network…"
  $("attribution").replaceChildren()
  try {
    for await (const { event, data } of postedEvents("/api/chat", { prompt, maxTokens, temperature, ...(model === "" ? {} : { model }) })) {
      if (event === "token") {
        tokens.push(data as Attributed)
        showAnswer(tokens, false)
        status.textContent = `${tokens.length} ${unit(tokens)}…`
      } else if (event === "done") {
        const d = data as { request: string; model: string; seed: number; text: string }
        // What the last tokens leave unfinished (a character cut short) is theirs: the answer's text is then whole.
        const told = tokens.map((t) => t.text ?? "").join("")
        const last = tokens.at(-1)
        if (last?.text !== undefined && d.text.startsWith(told)) tokens[tokens.length - 1] = { ...last, text: last.text + d.text.slice(told.length) }
        showAnswer(tokens, true)
        status.className = "ok"
        status.textContent = `answered: ${tokens.length} ${unit(tokens)}, request ${d.request} (model ${d.model}, seed ${d.seed}); its receipts are on the log`
      } else if (event === "failed") {
        status.className = "bad"
        status.textContent = `failed: ${(data as { message: string }).message}`
      }
    }
  } catch (e) {
    status.className = "bad"
    status.textContent = String(e)
  }
}

const showPlans = async () => {
  const plans = await json<Array<{ plan: { planId: string; epoch: string; round: string; stages: Array<{ node: string; start: number; end: number }> }; status: string }>>("/api/plans")
  $("plans").replaceChildren(
    ...plans.map((p) => row(cell(p.plan.planId), cell(`${p.plan.epoch} / ${p.plan.round}`), cell(p.status), cell(p.plan.stages.map((s) => `${s.node}: ${s.start}..${s.end}`).join(", "))))
  )
}

/** The log, a page at a time. */
async function* pages(): AsyncIterable<ReadonlyArray<StoredEnvelope>> {
  let from: number | null = 0
  while (from !== null) {
    const page: { next: number | null; events: StoredEnvelope[] } = await json(`/api/events?from=${from}&limit=1000`)
    yield page.events
    from = page.next
  }
}

const verify = async () => {
  const out = $("verify-result")
  out.className = ""
  out.textContent = "verifying…"
  const genesis = await json<{ hash: string }>("/api/genesis")
  const v = await verifyLog(pages(), genesis.hash)
  out.className = v.ok ? "ok" : "bad"
  out.textContent = v.ok ? `verified ${v.events} events from genesis; head ${v.head}` : `first bad seq ${v.seq}: ${v.reason}`
}

const lookUp = async () => {
  const address = ($("address") as HTMLInputElement).value.trim()
  if (address === "") return
  const b = await json<{ address: string; units: string; supply: string }>(`/api/balances/${encodeURIComponent(address)}`)
  $("balance").textContent = `${b.address}: ${b.units} base units (supply ${b.supply})`
}

const live = () => {
  const source = new EventSource("/api/live")
  source.onopen = () => ($("live-status").textContent = "live")
  source.onerror = () => ($("live-status").textContent = "reconnecting…")
  source.addEventListener("envelope", (m) => {
    const e = JSON.parse((m as MessageEvent<string>).data) as StoredEnvelope & { data: { name?: string; hash?: string } }
    $("head").textContent = `seq ${e.seq} ${short(e.hash)}`
    if (e.type === "BlockAppended") $("blocks").prepend(blockRow({ seq: e.seq, name: e.data.name!, hash: e.data.hash! }))
    if (e.type === "ExpertUpdated" || e.type === "ModelSpecPublished") void showModel()
    if (e.stream.startsWith("round-")) void showRound(e.stream.slice("round-".length))
    if (e.type === "EpochPlanned" || e.type === "PlanPromoted" || e.type === "PlanFrozen") void showPlans()
    if (e.stream.startsWith("node-") || e.type === "RewardPaid") void showNodes()
  })
}

const start = async () => {
  $("chat-form").onsubmit = (e) => {
    e.preventDefault()
    void sendChat()
  }
  $("verify").onclick = () => void verify()
  $("balance-go").onclick = () => void lookUp()
  const health = await json<{ head: { seq: number; hash: string } | null }>("/health")
  $("head").textContent = health.head === null ? "empty" : `seq ${health.head.seq} ${short(health.head.hash)}`
  await Promise.all([showBlocks(), showModel(), showRounds(), showNodes(), showPlans()])
  live()
}

void start()

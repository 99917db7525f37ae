/**
 * The explorer's page: what the API's read models say, kept live by the log's server-sent events,
 * and the log verified here (see verify.ts). Plain DOM: the page is small.
 */
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

const showModel = async () => {
  const m = await json<{ parts: Array<{ name: string; block: string }> }>("/api/model")
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

const showRounds = async () => {
  const rounds = await json<Array<{ round: string; target: string; accepted: string | null; closed: boolean }>>("/api/rounds")
  const details = await Promise.all(
    rounds.map((r) =>
      json<{ round: string; contributions: Array<{ contribution: string; outcome: string; reason: string | null; verdicts: Array<{ validator: string; passes: boolean; improvement: number; wins: number; batches: number }> }> }>(
        `/api/rounds/${encodeURIComponent(r.round)}`
      )
    )
  )
  $("rounds").replaceChildren(
    ...details.map((r) => {
      const p = document.createElement("div")
      p.textContent = r.contributions
        .map(
          (c) =>
            `${r.round}: ${c.outcome}${c.reason === null ? "" : ` (${c.reason})`}; ` +
            c.verdicts.map((v) => `${short(v.validator)} ${v.passes ? "pass" : "fail"} ${(v.improvement * 100).toFixed(2)}% ${v.wins}/${v.batches}`).join("; ")
        )
        .join(" | ")
      return p
    })
  )
  if (details.length === 0) $("rounds").textContent = "No rounds yet."
}

const showNodes = async () => {
  const nodes = await json<Array<{ node: string; status: string; served: number; earned: string }>>("/api/nodes")
  $("nodes").replaceChildren(...nodes.map((n) => row(cell(n.node), cell(n.status), cell(String(n.served)), cell(n.earned))))
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
    if (e.type === "ExpertUpdated") void showModel()
    if (e.stream.startsWith("round-")) void showRounds()
    if (e.stream.startsWith("node-") || e.type === "RewardPaid") void showNodes()
  })
}

const start = async () => {
  $("verify").onclick = () => void verify()
  $("balance-go").onclick = () => void lookUp()
  const health = await json<{ head: { seq: number; hash: string } | null }>("/health")
  $("head").textContent = health.head === null ? "empty" : `seq ${health.head.seq} ${short(health.head.hash)}`
  await Promise.all([showBlocks(), showModel(), showRounds(), showNodes()])
  live()
}

void start()

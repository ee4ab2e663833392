// The paychan explorer: shows the ledger this node serves and checks it in the browser.
//
// What is verified here, not taken from the node: the checkpoint note's log signature and the
// witnesses' cosignatures (Ed25519 through WebCrypto) under keys the user pinned (stored in
// localStorage), and each shown transaction by its id (SHA-256 of its bytes) and an RFC 6962
// inclusion proof against that checkpoint's log root. The decoded fields and the lists are
// the node's word; the bytes they come from are what is checked.
"use strict";

const BLOCKS_POLL_MS = 500;
const CHECKPOINT_POLL_MS = 2000;
const CHART_POINTS = 64;
const enc = new TextEncoder();

// ---- bytes ----

function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}
function bytesToHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
function b64ToBytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
function subtle() {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error("WebCrypto is unavailable: open the page over https or from loopback");
  }
  return crypto.subtle;
}
async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}
async function ed25519Verify(key32, sig64, msg) {
  let key;
  try {
    key = await subtle().importKey("raw", key32, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    throw new Error(`this browser has no Ed25519 in WebCrypto (${e.name})`);
  }
  return subtle().verify({ name: "Ed25519" }, key, sig64, msg);
}

// ---- C2SP signed notes, verifier keys, RFC 6962 proofs ----

// `<name>+<key id hex>+<base64(type || key)>`; the key id must be its derivation.
async function parseVerifierKey(text) {
  const t = text.trim();
  const a = t.indexOf("+");
  const b = t.indexOf("+", a + 1);
  if (a <= 0 || b < 0) throw new Error(`not a verifier key: ${t}`);
  const name = t.slice(0, a);
  const id = t.slice(a + 1, b);
  const raw = b64ToBytes(t.slice(b + 1));
  if (raw.length !== 33) throw new Error(`verifier key of ${name}: not a type byte and 32 bytes`);
  const type = raw[0];
  if (type !== 0x01 && type !== 0x04) throw new Error(`verifier key of ${name}: type ${type} is not Ed25519`);
  const derived = (await sha256(concat(enc.encode(name), [0x0a], raw))).slice(0, 4);
  if (bytesToHex(derived) !== id.toLowerCase()) throw new Error(`verifier key of ${name}: wrong key id`);
  return { name, id: derived, type, key: raw.slice(1), text: t };
}

function parseNote(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("the note has no signature block");
  const body = text.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length !== 5) throw new Error("the note body is not four lines");
  const block = lines[3].split(" ");
  if (block.length !== 3 || block[0] !== "block") throw new Error("no block line in the note");
  const parsed = {
    body,
    origin: lines[0],
    size: Number(lines[1]),
    root: b64ToBytes(lines[2]),
    height: Number(block[1]),
    blockHash: b64ToBytes(block[2]),
    sigs: [],
  };
  if (!Number.isSafeInteger(parsed.size) || !Number.isSafeInteger(parsed.height)) throw new Error("bad size or height");
  for (const line of text.slice(split + 2).split("\n")) {
    if (!line) continue;
    if (!line.startsWith("\u2014 ")) throw new Error("a signature line does not start with an em dash");
    const rest = line.slice(2);
    const sp = rest.indexOf(" ");
    if (sp <= 0) throw new Error("a malformed signature line");
    parsed.sigs.push({ name: rest.slice(0, sp), raw: b64ToBytes(rest.slice(sp + 1)) });
  }
  return parsed;
}

// Checks a checkpoint note against the pinned keys. Returns the parsed note with `ok`,
// `reason` and one entry per signature line (`status`: verified, failed, ignored).
async function verifyCheckpoint(text, pins) {
  const note = parseNote(text);
  note.lines = [];
  if (!pins) return { ...note, ok: false, reason: "no keys pinned: pin the log and witness keys once (Pinned keys)" };
  const log = await parseVerifierKey(pins.log);
  const witnesses = [];
  for (const w of pins.witnesses) witnesses.push(await parseVerifierKey(w));
  const problems = [];
  if (note.origin !== log.name) problems.push(`the note is of ${note.origin}, not of the pinned log ${log.name}`);
  let logOk = false;
  const cosigned = new Set();
  for (const s of note.sigs) {
    const line = { name: s.name, status: "ignored", reason: "not a pinned key" };
    note.lines.push(line);
    const known = [log, ...witnesses].find((k) => k.name === s.name && s.raw.length >= 4 && equal(s.raw.slice(0, 4), k.id));
    if (!known) continue;
    if (known === log) {
      line.role = "log";
      const good = s.raw.length === 68 && (await ed25519Verify(log.key, s.raw.slice(4), enc.encode(note.body)));
      line.status = good ? "verified" : "failed";
      line.reason = good ? "log signature of the pinned sequencer key" : "the log signature does not verify";
      if (good) logOk = true; else problems.push(line.reason);
    } else {
      line.role = "witness";
      if (s.raw.length !== 76) {
        line.status = "failed";
        line.reason = "a cosignature is not 76 bytes";
      } else {
        const ts = new DataView(s.raw.buffer, s.raw.byteOffset + 4, 8).getBigUint64(0);
        line.timestamp_s = Number(ts);
        const msg = concat(enc.encode(`cosignature/v1\ntime ${ts}\n`), enc.encode(note.body));
        const good = await ed25519Verify(known.key, s.raw.slice(12), msg);
        line.status = good ? "verified" : "failed";
        line.reason = good ? `cosigned at ${new Date(Number(ts) * 1000).toISOString()}` : `the cosignature of ${s.name} does not verify`;
      }
      if (line.status === "verified") cosigned.add(known.name); else problems.push(line.reason);
    }
  }
  if (!logOk && !problems.length) problems.push("no signature by the pinned log key");
  if (cosigned.size < pins.threshold) problems.push(`${cosigned.size} of the ${pins.threshold} witness cosignatures needed`);
  return { ...note, ok: problems.length === 0, reason: problems.join("; "), cosigned: cosigned.size };
}

// RFC 9162 2.1.3.2: the root from a leaf hash and its inclusion path.
async function rootFromInclusion(index, size, leaf, path) {
  if (index >= size) throw new Error(`leaf ${index} is outside a log of ${size}`);
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new Error("the inclusion path is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(concat([1], p, r));
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(concat([1], r, p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("the inclusion path is too short");
  return r;
}

// Checks a transaction's bytes against its id and its inclusion in the verified checkpoint.
async function verifyTx(tx) {
  const bytes = hexToBytes(tx.hex);
  const id = await sha256(concat(enc.encode("paychan/v1/tx-id"), [0], bytes));
  if (bytesToHex(id) !== tx.id) return { status: "failed", reason: "its bytes do not hash to its id" };
  if (!state.checkpoint) await Promise.race([checkpointRead, new Promise((r) => setTimeout(r, 5000))]);
  const cp = state.checkpoint;
  if (!cp) return { status: "pending", reason: "no checkpoint read yet" };
  if (!cp.ok) return { status: "failed", reason: `the checkpoint does not verify: ${cp.reason}` };
  if (typeof tx.index === "number" && tx.index >= cp.size) {
    return { status: "pending", reason: `newer than the verified checkpoint (log size ${cp.size})` };
  }
  const resp = await fetch(`/ledger/proof/inclusion?tx=${tx.id}&size=${cp.size}`);
  if (!resp.ok) return { status: "failed", reason: `no inclusion proof at log size ${cp.size} (HTTP ${resp.status})` };
  const proof = new Uint8Array(await resp.arrayBuffer());
  if (proof.length < 8 || (proof.length - 8) % 32) return { status: "failed", reason: "a malformed inclusion proof" };
  const index = Number(new DataView(proof.buffer).getBigUint64(0));
  const path = [];
  for (let o = 8; o < proof.length; o += 32) path.push(proof.slice(o, o + 32));
  const leaf = await sha256(concat([0], bytes));
  let root;
  try {
    root = await rootFromInclusion(index, cp.size, leaf, path);
  } catch (e) {
    return { status: "failed", reason: e.message };
  }
  if (!equal(root, cp.root)) return { status: "failed", reason: "the inclusion proof does not lead to the checkpoint's log root" };
  return { status: "verified", reason: `entry ${index} of the log of size ${cp.size}, checkpoint at height ${cp.height}` };
}

// ---- state, pinned keys ----

const state = {
  info: null,
  checkpoint: null, // the verified (or not) newest checkpoint
  checkpointText: null,
  blocks: [],
  firstSeen: {}, // block hash -> Date.now() when this page first listed it
  lockedSeries: [], // [time_ms, value_locked]
  paymentsSeries: [], // payments per second on this node's channels, between two reads
  metrics: null, // the node's figures (/explorer/metrics, the same as /metrics)
  metricsAt: 0,
};
window.paychanExplorer = state;
let checkpointReadDone, infoReadDone;
const infoRead = new Promise((r) => { infoReadDone = r; });
const checkpointRead = new Promise((r) => { checkpointReadDone = r; });

function pinsKey() {
  return state.info ? `paychan.pins.${state.info.chain_id}` : null;
}
function loadPins() {
  const k = pinsKey();
  if (!k) return null;
  try {
    const v = JSON.parse(localStorage.getItem(k) || "null");
    return v && typeof v.log === "string" && Array.isArray(v.witnesses) ? v : null;
  } catch {
    return null;
  }
}
function savePins(p) {
  localStorage.setItem(pinsKey(), JSON.stringify(p));
}

// ---- DOM helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
function link(href, text, cls) {
  return el("a", { href, class: cls || "" }, text);
}
function amount(n) {
  const sym = state.info ? state.info.unit.symbol : "";
  return `${Number(n).toLocaleString("en-US")} ${sym}`;
}
function time(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(".000Z", "Z");
}
function duration(ms) {
  const s = Math.round(ms / 1000);
  return s >= 120 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
function short(hex) {
  return hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex;
}
function verdictBadge(v, id) {
  const attrs = { class: `verdict ${v.status}`, "data-verdict": v.status };
  if (id) attrs.id = id;
  const label = { verified: "verified", failed: "not verified", pending: "not yet verified" }[v.status];
  return el("span", attrs, label, el("span", { class: "reason" }, v.reason));
}
function rowsTable(caption, rows) {
  return el("div", { class: "scroll" },
    el("table", {}, el("caption", { class: "muted" }, caption || ""),
      el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v))))));
}
function setStatus(text, error) {
  const s = document.getElementById("status");
  s.className = error ? "error" : "";
  s.textContent = text;
}
async function getJson(url) {
  const resp = await fetch(url);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `HTTP ${resp.status}`);
  return body;
}
function fieldValue(k, v) {
  if (v === null) return "none";
  if (typeof v === "object") return Object.entries(v).map(([a, b]) => `${a} ${b}`).join(", ");
  if (/^(from|to|party_a|party_b|closer|creditor|debtor)$/.test(k)) return link(`#/account/${v}`, v, "mono");
  if (/amount|deposit|balance|limit/.test(k)) return amount(v);
  if (/_ms$/.test(k)) return time(v);
  return el("span", { class: "mono" }, v);
}

// ---- the header bars: alarms and the checkpoint ----

function renderAlarms() {
  const box = document.getElementById("alarms");
  const a = state.info && state.info.alarms;
  const items = [];
  if (a) {
    for (const s of a.split_views) items.push(`split view: ${s.reason} (heights ${s.first.height} and ${s.second.height})`);
    for (const d of a.double_blocks) items.push(`double block at height ${d.height}: ${short(d.first_hash)} and ${short(d.second_hash)}`);
  }
  box.replaceChildren(...(items.length ? [el("strong", {}, "This node raised alarms about the sequencer:"), el("ul", {}, items.map((t) => el("li", {}, t)))] : []));
}

function renderCheckpointBar() {
  const bar = document.getElementById("cp-bar");
  const cp = state.checkpoint;
  if (!cp) {
    bar.replaceChildren(el("span", { class: "muted" }, "no checkpoint yet"));
    return;
  }
  const v = { status: cp.ok ? "verified" : "failed", reason: cp.ok ? `log signature and ${cp.cosigned} witness cosignature${cp.cosigned === 1 ? "" : "s"}` : cp.reason };
  bar.replaceChildren(link("#/checkpoint", `Checkpoint at height ${cp.height}, log size ${cp.size}`), " ", verdictBadge(v, "cp-verdict"));
}

async function pollCheckpoint() {
  try {
    state.info = await getJson("/explorer/info");
    infoReadDone();
    const m = await getJson("/explorer/metrics");
    const t = Date.now();
    if (state.metrics) {
      const paid = m.payments_sent + m.payments_received - state.metrics.payments_sent - state.metrics.payments_received;
      state.paymentsSeries.push(Math.max(0, paid) / Math.max((t - state.metricsAt) / 1000, 0.001));
      if (state.paymentsSeries.length > CHART_POINTS) state.paymentsSeries.shift();
    }
    state.metrics = m;
    state.metricsAt = t;
    state.lockedSeries.push([m.ledger_time_ms, m.value_locked]);
    if (state.lockedSeries.length > CHART_POINTS) state.lockedSeries.shift();
    renderAlarms();
    if (state.info.checkpoint_height !== null) {
      const resp = await fetch("/tlog/checkpoint");
      if (!resp.ok) throw new Error(`checkpoint: HTTP ${resp.status}`);
      const text = await resp.text();
      if (text !== state.checkpointText || !state.checkpoint || state.pinsChanged) {
        state.pinsChanged = false;
        let cp;
        try {
          cp = await verifyCheckpoint(text, loadPins());
        } catch (e) {
          cp = { ok: false, reason: e.message, size: 0, height: 0, lines: [], body: text };
        }
        state.checkpointText = text;
        state.checkpoint = cp;
        renderCheckpointBar();
        checkpointReadDone();
        if (route().name === "checkpoint") render();
      }
    }
  } catch (e) {
    setStatus(`cannot read the checkpoint: ${e.message}`, true);
  }
  setTimeout(pollCheckpoint, CHECKPOINT_POLL_MS);
}

// ---- charts (plain SVG) ----

function barChart(values, label) {
  const w = 300, h = 100;
  const max = Math.max(1, ...values);
  const bw = w / Math.max(values.length, CHART_POINTS);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  values.forEach((v, i) => {
    const r = document.createElementNS(svg.namespaceURI, "rect");
    const bh = (v / max) * (h - 4);
    r.setAttribute("x", String(i * bw + 0.5));
    r.setAttribute("y", String(h - bh));
    r.setAttribute("width", String(Math.max(bw - 1, 0.5)));
    r.setAttribute("height", String(bh));
    r.setAttribute("fill", "#3b6ea8");
    svg.append(r);
  });
  return svg;
}
function lineChart(points, label) {
  const w = 300, h = 100;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (points.length) {
    const max = Math.max(1, ...points);
    const step = w / Math.max(points.length - 1, 1);
    const y = (v) => (h - 2 - (v / max) * (h - 6)).toFixed(1);
    // One point draws as a short flat segment.
    const d = points.length === 1
      ? `M0,${y(points[0])} L${w},${y(points[0])}`
      : points.map((v, i) => `${i ? "L" : "M"}${(i * step).toFixed(1)},${y(v)}`).join(" ");
    const p = document.createElementNS(svg.namespaceURI, "path");
    p.setAttribute("d", d);
    p.setAttribute("fill", "none");
    p.setAttribute("stroke", "#3b6ea8");
    p.setAttribute("stroke-width", "2");
    p.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(p);
  }
  return svg;
}

// ---- views ----

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  return { name: parts[0] || "blocks", arg: parts[1] || "" };
}

function blocksView() {
  const rows = state.blocks.slice(0, 20).map((b) => {
    const kinds = b.txs.map((t) => t.kind).join(", ");
    return el("tr", { "data-hash": b.hash, "data-height": String(b.height) },
      el("td", {}, link(`#/block/${b.height}`, String(b.height))),
      el("td", { class: "hash" }, b.hash),
      el("td", { class: "wide" }, time(b.time_ms)),
      el("td", {}, b.txs.length ? `${b.txs.length} (${kinds})` : "0"));
  });
  const perBlock = state.blocks.slice().reverse().map((b) => b.txs.length);
  const locked = state.lockedSeries.map((p) => p[1]);
  const lastLocked = locked.length ? amount(locked[locked.length - 1]) : "…";
  return [
    el("section", { "aria-labelledby": "charts-h" },
      el("h2", { id: "charts-h" }, "Activity"),
      el("div", { class: "charts" },
        el("figure", {}, barChart(perBlock, "transactions per block"), el("figcaption", {}, `transactions per block, newest ${perBlock.length} blocks`)),
        el("figure", {}, lineChart(locked, "value locked in channels"), el("figcaption", {}, `value locked in channels: ${lastLocked}`)),
        state.metrics && Object.keys(state.metrics.channels).length
          ? el("figure", {}, lineChart(state.paymentsSeries, "payments per second"),
            el("figcaption", {}, `payments per second on this node's channels: ${state.paymentsSeries.length ? state.paymentsSeries[state.paymentsSeries.length - 1].toFixed(1) : "…"}`))
          : null)),
    el("section", { "aria-labelledby": "blocks-h" },
      el("h2", { id: "blocks-h" }, "Newest blocks"),
      el("div", { class: "scroll", tabindex: "0", "aria-label": "newest blocks" },
        el("table", { id: "blocks" },
          el("caption", { class: "muted" }, `live, refreshed every ${BLOCKS_POLL_MS} ms`),
          el("thead", {}, el("tr", {}, el("th", {}, "Height"), el("th", {}, "Block hash"), el("th", { class: "wide" }, "Time"), el("th", {}, "Transactions"))),
          el("tbody", {}, rows)))),
  ];
}

function txRow(t, verdictCell) {
  return el("tr", { "data-tx": t.id },
    el("td", {}, t.kind),
    el("td", { class: "hash" }, link(`#/tx/${t.id}`, t.id)),
    el("td", { class: "wide" }, `${t.bytes} bytes`),
    el("td", {}, verdictCell));
}

async function blockView(arg) {
  const b = await getJson(`/explorer/block/${encodeURIComponent(arg)}`);
  const cells = b.txs.map(() => el("td", {}, el("span", { class: "verdict pending", "data-verdict": "pending" }, "checking…")));
  const rows = b.txs.map((t, i) => txRow(t, cells[i]));
  const view = [
    el("h2", {}, `Block ${b.height}`),
    rowsTable("header (decoded by the node)", [
      ["hash", el("span", { class: "mono" }, b.hash)],
      ["previous", b.height > 1 ? link(`#/block/${b.height - 1}`, b.prev_hash, "mono") : el("span", { class: "mono" }, b.prev_hash)],
      ["time", time(b.time_ms)],
      ["transactions root", el("span", { class: "mono" }, b.tx_root)],
      ["log size", String(b.log_size)],
      ["log root", el("span", { class: "mono" }, b.log_root)],
      ["state root", el("span", { class: "mono" }, b.state_root)],
      ["sequencer signature", el("span", { class: "mono" }, b.signature)],
    ]),
    el("h2", {}, `Transactions (${b.txs.length})`),
    el("div", { class: "scroll", tabindex: "0", "aria-label": "transactions" },
      el("table", { id: "txs" }, el("thead", {}, el("tr", {}, el("th", {}, "Kind"), el("th", {}, "Id"), el("th", { class: "wide" }, "Size"), el("th", {}, "Inclusion"))), el("tbody", {}, rows))),
  ];
  // Indexes of the block's entries in the log: the last one is log_size - 1.
  const first = b.log_size - b.txs.length;
  b.txs.forEach((t, i) => {
    verifyTx({ ...t, index: first + i }).then((v) => cells[i].replaceChildren(verdictBadge(v)));
  });
  return view;
}

async function txView(arg) {
  const t = await getJson(`/explorer/tx/${encodeURIComponent(arg)}`);
  const badge = el("p", {}, el("span", { class: "verdict pending", id: "tx-verdict", "data-verdict": "pending" }, "checking…"));
  const fields = Object.entries(t.fields).map(([k, v]) => [k, fieldValue(k, v)]);
  const view = [
    el("h2", {}, `${t.kind} transaction`),
    badge,
    rowsTable("", [
      ["id", el("span", { class: "mono" }, t.id)],
      ["block", link(`#/block/${t.height}`, `${t.height}`)],
      ["time", time(t.time_ms)],
      ["log index", String(t.index)],
      ["size", `${t.bytes} bytes`],
    ]),
    rowsTable("fields (decoded by the node from the bytes below)", fields),
    el("h2", {}, "Bytes"),
    el("p", { class: "bytes", id: "tx-bytes" }, t.hex),
  ];
  verifyTx(t).then((v) => badge.replaceChildren(verdictBadge(v, "tx-verdict")));
  return view;
}

async function accountView(arg) {
  const a = await getJson(`/explorer/account/${encodeURIComponent(arg)}`);
  const rows = a.history.map((h) => el("tr", {},
    el("td", {}, link(`#/block/${h.height}`, String(h.height))),
    el("td", { class: "wide" }, time(h.time_ms)),
    el("td", {}, link(`#/tx/${h.id}`, h.kind)),
    el("td", {}, h.amount_delta === undefined ? (h.fields.channel ? link("#/channels", short(h.fields.channel), "mono") : "") : `${h.amount_delta > 0 ? "+" : ""}${amount(h.amount_delta)}`)));
  return [
    el("h2", {}, "Account"),
    rowsTable("", [
      ["key", el("span", { class: "mono" }, a.account)],
      ["balance", el("span", { id: "balance" }, amount(a.balance))],
      ["next nonce", String(a.nonce)],
    ]),
    el("h2", {}, "History"),
    el("div", { class: "scroll", tabindex: "0", "aria-label": "history" },
      el("table", {}, el("caption", { class: "muted" }, `newest first, from the newest ${a.scanned_blocks} blocks`),
        el("thead", {}, el("tr", {}, el("th", {}, "Height"), el("th", { class: "wide" }, "Time"), el("th", {}, "Transaction"), el("th", {}, "Amount or channel"))),
        el("tbody", {}, rows))),
  ];
}

async function channelsView() {
  const c = await getJson("/explorer/channels");
  const rows = c.channels.map((ch) => {
    let status;
    if (ch.status === "closing") status = `closing: ${duration(ch.time_left_ms)} left in the challenge window (ends ${time(ch.window_end_ms)})`;
    else if (ch.status === "settled") status = `settled: A got ${amount(ch.payout_a)}, B got ${amount(ch.payout_b)}`;
    else status = "open";
    return el("tr", { "data-channel": ch.id, "data-status": ch.status },
      el("td", { class: "hash" }, short(ch.id)),
      el("td", {}, link(`#/account/${ch.party_a}`, short(ch.party_a), "mono"), el("br"), link(`#/account/${ch.party_b}`, short(ch.party_b), "mono")),
      el("td", {}, `${amount(ch.deposit_a)} + ${amount(ch.deposit_b)}`),
      el("td", {}, status));
  });
  return [
    el("h2", {}, "Channels"),
    el("p", {}, `Value locked in open and closing channels: ${amount(c.value_locked)}; ledger time ${time(c.time_ms)}.`),
    el("div", { class: "scroll", tabindex: "0", "aria-label": "channels" },
      el("table", { id: "channels" },
        el("thead", {}, el("tr", {}, el("th", {}, "Channel"), el("th", {}, "Parties (A, B)"), el("th", {}, "Deposits"), el("th", {}, "Status"))),
        el("tbody", {}, rows))),
  ];
}

function checkpointView() {
  const cp = state.checkpoint;
  if (!cp) return [el("p", {}, "no checkpoint yet")];
  const lines = (cp.lines || []).map((l) => el("tr", { "data-role": l.role || "", "data-status": l.status },
    el("td", { class: "hash" }, l.name),
    el("td", {}, l.role || "unknown key"),
    el("td", {}, l.status === "ignored" ? el("span", { class: "muted" }, `ignored: ${l.reason}`) : verdictBadge({ status: l.status, reason: l.reason }))));
  return [
    el("h2", {}, "Newest checkpoint"),
    el("p", {}, verdictBadge({ status: cp.ok ? "verified" : "failed", reason: cp.ok ? "every pinned signature present verifies and enough witnesses cosigned" : cp.reason })),
    rowsTable("the signed body", [
      ["origin", el("span", { class: "mono" }, cp.origin || "")],
      ["log size", String(cp.size)],
      ["log root", el("span", { class: "mono" }, cp.root ? bytesToHex(cp.root) : "")],
      ["block", cp.height ? link(`#/block/${cp.height}`, String(cp.height)) : ""],
      ["block hash", el("span", { class: "mono" }, cp.blockHash ? bytesToHex(cp.blockHash) : "")],
    ]),
    el("h2", {}, "Signatures"),
    el("div", { class: "scroll", tabindex: "0", "aria-label": "signatures" },
      el("table", { id: "cosignatures" }, el("thead", {}, el("tr", {}, el("th", {}, "Key"), el("th", {}, "Role"), el("th", {}, "Check"))), el("tbody", {}, lines))),
    el("h2", {}, "The note"),
    el("pre", { class: "bytes", id: "note" }, state.checkpointText || ""),
  ];
}

async function keysView() {
  if (!state.info) await Promise.race([infoRead, new Promise((r) => setTimeout(r, 5000))]);
  const pins = loadPins();
  const info = state.info;
  const suggested = info ? [info.log_key, ...info.witness_keys].join("\n") : "";
  const area = el("textarea", { id: "pin-keys", rows: 6, "aria-label": "verifier keys, one a line: the log key first, then the witnesses" });
  area.value = pins ? [pins.log, ...pins.witnesses].join("\n") : suggested;
  const threshold = el("input", { id: "pin-threshold", type: "number", min: "0", value: String(pins ? pins.threshold : info ? info.witness_threshold : 1) });
  const msg = el("p", { role: "status" });
  const pin = el("button", { type: "button", id: "pin" }, "Pin these keys");
  pin.addEventListener("click", async () => {
    const lines = area.value.split("\n").map((l) => l.trim()).filter(Boolean);
    try {
      if (!lines.length) throw new Error("give the log key, then the witness keys");
      for (const l of lines) await parseVerifierKey(l);
      const t = Number(threshold.value);
      if (!Number.isInteger(t) || t < 0 || t > lines.length - 1) throw new Error("the number of cosignatures needed is between 0 and the number of witness keys");
      savePins({ log: lines[0], witnesses: lines.slice(1), threshold: t });
      state.pinsChanged = true;
      msg.className = "";
      msg.textContent = "pinned; checkpoints are now checked against these keys";
    } catch (e) {
      msg.className = "error";
      msg.textContent = e.message;
    }
  });
  const forget = el("button", { type: "button" }, "Forget pinned keys");
  forget.addEventListener("click", () => {
    localStorage.removeItem(pinsKey());
    state.pinsChanged = true;
    msg.className = "";
    msg.textContent = "forgotten";
  });
  return [
    el("h2", {}, "Pinned keys"),
    el("p", {}, pins ? "Checkpoints are checked against these keys, pinned in this browser." : "No keys are pinned yet. Below are the keys this node announces: compare them with the genesis you trust (e.g. `paychan ledger checkpoint` on a node of your own) before you pin them."),
    el("label", { for: "pin-keys" }, "Verifier keys, one a line (the log key first, then the witnesses):"),
    area,
    el("p", {}, el("label", { for: "pin-threshold" }, "Witness cosignatures needed: "), threshold),
    el("p", {}, pin, " ", forget),
    msg,
  ];
}

async function testnetView() {
  const t = await getJson("/explorer/testnet");
  if (!t.nodes.length) return [el("h2", {}, "Testnet"), el("p", {}, "This node is not a node of a local testnet (no testnet.json in its data dir).")];
  const rows = await Promise.all(t.nodes.map(async (n) => {
    let height = "-", peers = "-", role = n.role, reach = "";
    if (n.public_url) {
      try {
        const [info, p] = await Promise.all([getJson(`${n.public_url}/explorer/info`), getJson(`${n.public_url}/explorer/peers`)]);
        height = String(info.height);
        role = info.node.role;
        peers = p.peers.map((x) => `${x.role} ${short(x.peer_id)}`).join(", ") || "none";
      } catch (e) {
        reach = `unreachable: ${e.message}`;
      }
    }
    return el("tr", { "data-node": n.name, "data-height": height },
      el("td", {}, n.public_url ? link(`${n.public_url}/#/`, n.name) : n.name),
      el("td", {}, role),
      el("td", {}, reach ? el("span", { class: "error" }, reach) : height),
      el("td", { class: "hash" }, short(n.peer_id)),
      el("td", {}, peers));
  }));
  return [
    el("h2", {}, "Testnet"),
    el("p", { class: "muted" }, "Each node's page, role, height and connected peers, read from its own public listener."),
    el("div", { class: "scroll", tabindex: "0", "aria-label": "testnet nodes" },
      el("table", { id: "testnet" },
        el("thead", {}, el("tr", {}, el("th", {}, "Node"), el("th", {}, "Role"), el("th", {}, "Height"), el("th", {}, "Peer id"), el("th", {}, "Connected peers"))),
        el("tbody", {}, rows))),
  ];
}

let renderSeq = 0;
async function render() {
  const r = route();
  const seq = ++renderSeq;
  const view = document.getElementById("view");
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").replace(/^#\/?/, "") || "blocks";
    if (target === r.name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  let content;
  try {
    switch (r.name) {
      case "block": content = await blockView(r.arg); break;
      case "tx": content = await txView(r.arg); break;
      case "account": content = await accountView(r.arg); break;
      case "channels": content = await channelsView(); break;
      case "checkpoint": content = checkpointView(); break;
      case "keys": content = await keysView(); break;
      case "testnet": content = await testnetView(); break;
      default: content = blocksView();
    }
  } catch (e) {
    content = [el("p", { class: "error", id: "view-error" }, `cannot show this: ${e.message}`)];
  }
  if (seq === renderSeq) view.replaceChildren(...content);
}

async function pollBlocks() {
  try {
    const blocks = await getJson(`/explorer/blocks?limit=${CHART_POINTS}`);
    const now = Date.now();
    for (const b of blocks) if (!(b.hash in state.firstSeen)) state.firstSeen[b.hash] = now;
    const changed = !state.blocks.length || !blocks.length || blocks[0].hash !== state.blocks[0].hash;
    state.blocks = blocks;
    setStatus(blocks.length ? `tip at height ${blocks[0].height}` : "no block yet");
    if (changed && route().name === "blocks") render();
    // The testnet view follows the nodes' heights.
    if (route().name === "testnet" && now - (state.testnetAt || 0) > CHECKPOINT_POLL_MS) {
      state.testnetAt = now;
      render();
    }
  } catch (e) {
    setStatus(`cannot read blocks: ${e.message}`, true);
  }
  setTimeout(pollBlocks, BLOCKS_POLL_MS);
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = document.getElementById("q").value.trim().toLowerCase();
  if (/^\d+$/.test(q)) location.hash = `#/block/${q}`;
  else if (/^[0-9a-f]{64}$/.test(q)) {
    // A transaction id or an account key: try the transaction first.
    getJson(`/explorer/find/${q}`)
      .then((f) => { location.hash = f.kind === "tx" ? `#/tx/${q}` : `#/account/${q}`; })
      .catch((e) => setStatus(`cannot search: ${e.message}`, true));
  } else setStatus("give a height or 64 hex characters", true);
});
window.addEventListener("hashchange", () => {
  render().then(() => document.getElementById("view").focus({ preventScroll: true }));
});

pollBlocks();
pollCheckpoint();
render();

// The paychan explorer: polls the node's public listener for its newest blocks.
"use strict";

const POLL_MS = 1000;

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render(blocks) {
  const body = document.querySelector("#blocks tbody");
  const rows = blocks.map((b) => {
    const tr = document.createElement("tr");
    tr.dataset.hash = b.hash;
    tr.appendChild(cell(String(b.height)));
    tr.appendChild(cell(b.hash, "hash"));
    tr.appendChild(cell(new Date(b.time_ms).toISOString(), "time"));
    // Kinds come from the node as variant names: one it does not know shows as it is.
    const kinds = b.txs.map((t) => t.kind).join(", ");
    tr.appendChild(cell(b.txs.length ? `${b.txs.length} (${kinds})` : "0"));
    return tr;
  });
  body.replaceChildren(...rows);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("/explorer/blocks");
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const blocks = await resp.json();
    render(blocks);
    status.className = "";
    status.textContent = blocks.length ? `tip at height ${blocks[0].height}` : "no block yet";
  } catch (e) {
    status.className = "error";
    status.textContent = `cannot read blocks: ${e.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();

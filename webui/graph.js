// A graph work's graph, drawn from the work's own graph with each node's state and
// timing from the latest attempt, and that attempt's node runs as a timeline (bars on
// one time axis, so nodes that ran at the same time overlap). While an attempt runs,
// the nodes show its progress instead, asked for every second.

import { api } from "./api.js";
import { escape } from "./format.js";

/** Seconds between two looks at a running graph's nodes. */
const EVERY = 1000;
const LIVE_TEXT = { running: "running…", success: "done", failure: "failed", waiting: "not started" };

const W = 150, H = 46, GAP_X = 60, GAP_Y = 22;
const idText = (id) => (Array.isArray(id) ? id.map(idText).join(":") : String(id));
/** Seconds as "12 ms", "1.4 s", "3 min 5 s". */
const took = (s) => (s < 1 ? `${Math.round(s * 1000)} ms` : s < 60 ? `${s.toFixed(1)} s`
  : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

/** The node runs of the latest attempt that has any, or []. */
export function latestRuns(doc) {
  const attempts = (doc.history || []).filter((e) => (e.kind || "attempt") === "attempt" && e.nodes);
  return attempts.length ? attempts[attempts.length - 1].nodes : [];
}

function summary(runs, id) {
  const own = runs.filter((r) => r.node === id || r.node.startsWith(`${id}:`));
  if (!own.length) return { state: "waiting", text: "not run" };
  const failed = own.filter((r) => r.outcome === "failure");
  const span = Math.max(...own.map((r) => r.stopped)) - Math.min(...own.map((r) => r.started));
  const count = new Set(own.map((r) => `${r.node}#${r.run}`)).size;
  const reused = own.every((r) => r.reused);
  return { state: failed.length ? "failure" : "success",
           text: reused ? "reused" : `${took(span)}${count > 1 ? ` · ${count} runs` : ""}`,
           error: failed.length ? failed[failed.length - 1].error : null };
}

/** Levels left to right: the longest path from a start, back edges of loops ignored. */
function levels(ids, links) {
  const out = new Map(ids.map((id) => [id, []]));
  for (const link of links) out.get(link.source)?.push(link.target);
  const state = new Map(), order = [], back = new Set();
  const visit = (id) => {
    state.set(id, 1);
    for (const next of out.get(id) || []) {
      if (state.get(next) === 1) back.add(`${id}->${next}`);
      else if (!state.has(next)) visit(next);
    }
    state.set(id, 2);
    order.unshift(id);
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  const level = new Map(ids.map((id) => [id, 0]));
  for (const id of order) for (const next of out.get(id) || [])
    if (!back.has(`${id}->${next}`)) level.set(next, Math.max(level.get(next), level.get(id) + 1));
  return { level, back };
}

/** While the work runs, the state of each node in the running attempt; else null. */
function liveNodes(doc) {
  return doc.status === "running" ? (doc.progress && doc.progress.nodes) || {} : null;
}

function drawing(graph, runs, live) {
  const ids = (graph.nodes || []).map((n) => idText(n.id));
  const labels = new Map((graph.nodes || []).map((n) => [idText(n.id), n.label || idText(n.id)]));
  const links = (graph.links || []).map((l) => ({ ...l, source: idText(l.source), target: idText(l.target) }));
  const { level, back } = levels(ids, links);
  const rows = new Map(), at = new Map();
  for (const id of ids) {
    const column = level.get(id), row = rows.get(column) || 0;
    rows.set(column, row + 1);
    at.set(id, { x: 10 + column * (W + GAP_X), y: 10 + row * (H + GAP_Y) });
  }
  const width = 20 + (Math.max(0, ...level.values()) + 1) * (W + GAP_X) - GAP_X;
  const height = 40 + Math.max(1, ...rows.values()) * (H + GAP_Y);
  const edges = links.map((link) => {
    const a = at.get(link.source), b = at.get(link.target);
    if (!a || !b) return "";
    const kind = link.on_error ? "error" : link.conditions && link.conditions.length ? "conditional" : "plain";
    const title = link.conditions ? link.conditions.map((c) => `${c.source_output} == ${JSON.stringify(c.value)}`).join(" and ") : (link.on_error ? "on error" : "");
    let d;
    if (link.source === link.target) {
      d = `M${a.x + W * 0.7},${a.y + H} C${a.x + W * 0.75},${a.y + H + 34} ${a.x + W * 0.25},${a.y + H + 34} ${a.x + W * 0.3},${a.y + H + 2}`;
    } else if (back.has(`${link.source}->${link.target}`)) {
      const low = Math.max(a.y, b.y) + H + 16;
      d = `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${low} ${b.x + W / 2},${low} ${b.x + W / 2},${b.y + H}`;
    } else {
      d = `M${a.x + W},${a.y + H / 2} C${a.x + W + GAP_X / 2},${a.y + H / 2} ${b.x - GAP_X / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}`;
    }
    return `<path class="edge ${kind}" d="${d}" marker-end="url(#arrow)"><title>${escape(title || `${link.source} → ${link.target}`)}</title></path>`;
  }).join("");
  const boxes = ids.map((id) => {
    const { x, y } = at.get(id);
    const s = live ? { state: live[id] || "waiting", text: LIVE_TEXT[live[id] || "waiting"] } : summary(runs, id);
    const tip = s.error ? `${s.error.type}: ${s.error.message}` : `${labels.get(id)}: ${s.text}`;
    return `<g class="node ${s.state}" data-node="${escape(id)}" data-state="${s.state}" transform="translate(${x},${y})">
      <title>${escape(tip)}</title><rect width="${W}" height="${H}" rx="6"/>
      <text x="10" y="19" class="name">${escape(labels.get(id).slice(0, 20))}</text>
      <text x="10" y="36" class="timing">${escape(s.text)}</text></g>`;
  }).join("");
  return `<svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img"
      aria-label="The work's graph: ${ids.length} nodes, each with its state">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
      <path d="M0,0 L10,5 L0,10 z"/></marker></defs>${edges}${boxes}</svg>`;
}

function timeline(runs) {
  if (!runs.length) return '<p class="caption">No node has run yet.</p>';
  const first = Math.min(...runs.map((r) => r.started));
  const span = Math.max(1e-3, Math.max(...runs.map((r) => r.stopped)) - first);
  const rows = runs.map((r) => {
    const left = (100 * (r.started - first)) / span, width = Math.max(0.5, (100 * (r.stopped - r.started)) / span);
    return `<tr data-node-run="${escape(r.node)}#${r.run}" class="${escape(r.outcome)}">
      <td class="mono">${escape(r.node)}</td><td>${r.run}</td>
      <td><span class="status ${escape(r.outcome)}">${escape(r.outcome)}</span>${r.reused ? ' <span class="caption" title="its outputs were kept from an earlier run of the same task and inputs">reused</span>' : ""}</td>
      <td>+${took(r.started - first)}</td><td>${took(r.stopped - r.started)}</td>
      <td class="gantt"><span style="margin-left:${left.toFixed(1)}%;width:${width.toFixed(1)}%"></span></td>
      <td>${escape(r.host || "")}${r.pid ? ` (${r.pid})` : ""}</td>
      <td class="error">${r.error ? `${escape(r.error.type)}: ${escape(r.error.message)}` : ""}</td></tr>`;
  }).join("");
  return `<div class="scroll"><table class="results node-runs"><thead><tr><th scope="col">node</th>
    <th scope="col">run</th><th scope="col">outcome</th><th scope="col">start</th><th scope="col">took</th>
    <th scope="col">when, on one axis</th><th scope="col">host (pid)</th><th scope="col">error</th></tr></thead>
    <tbody>${rows}</tbody></table></div>`;
}

/** The graph section of a work page, or "" for a work without a graph. */
export function graphSection(doc) {
  const runs = latestRuns(doc);
  if (!doc.graph && !runs.length) return "";
  const picture = doc.graph && typeof doc.graph === "object"
    ? `<div class="scroll graph-picture">${drawing(doc.graph, runs, liveNodes(doc))}</div>`
    : `<p class="caption">The graph is read by the runner from <span class="mono">${escape(doc.graph || "")}</span>; its node runs:</p>`;
  return `<section class="graph-section"><h2>Graph</h2>${picture}
    <h3>Node runs of the latest attempt</h3>${timeline(runs)}</section>`;
}

/** While the work runs, redraw its graph every second with its nodes' progress;
 * `current()` says whether the page still shows this work. */
export async function followGraph(main, doc, signal, current) {
  const picture = main.querySelector(".graph-picture");
  if (!picture || doc.status !== "running") return;
  let shown = JSON.stringify(liveNodes(doc));
  while (!signal.aborted && current()) {
    await new Promise((done) => setTimeout(done, EVERY));
    let now;
    try {
      now = await api(`/buckets/work/${encodeURIComponent(doc.id)}`, { signal });
    } catch {
      continue; // the server is away for now: the page says so elsewhere
    }
    if (now.status !== "running" || now.attempt !== doc.attempt) return; // the page is shown anew
    const nodes = JSON.stringify(liveNodes(now));
    if (nodes !== shown && current() && picture.isConnected) {
      picture.innerHTML = drawing(now.graph, latestRuns(now), liveNodes(now));
      shown = nodes;
    }
  }
}

// One work: its outcome first (status, error, where it ran, attempts), its log (live
// while it runs, logs.js), then every field, parameters and results as JSON, the
// history as a timeline with errors, tracebacks and each attempt's provenance, plots
// shown inline and products to open or download, both only from the server's archive
// folder (GET /files/link refuses anything else), and its notifications (notices.js).

import { me, panel, wire } from "./actions.js";
import { api, signed } from "./api.js";
import { duration, escape, when } from "./format.js";
import { followGraph, graphSection } from "./graph.js";
import { followLog, logSection } from "./logs.js";
import { deliveryEntry, followNotices, noticesSection } from "./notices.js";
import { explain, nested, outcomeSection } from "./outcome.js";

const IMAGES = /\.(png|jpe?g|gif|svg|webp)$/i;
const SHOWN_APART = new Set(["parameters", "results", "history", "products", "plots", "lease", "graph", "progress"]);

function json(value) {
  return `<pre class="json">${escape(JSON.stringify(value ?? null, null, 2))}</pre>`;
}

function fields(doc) {
  const rows = Object.entries(doc).filter(([name]) => !SHOWN_APART.has(name)).map(([name, value]) => {
    let shown = value;
    if (name === "config" || name === "notify") {
      return `<tr><th scope="row">${escape(name)}</th><td data-field="${escape(name)}">${nested(name, value)}</td></tr>`;
    }
    if (["creation", "start", "stop", "not_before"].includes(name) && value) shown = `${when(value)} (${value})`;
    else if (value !== null && typeof value === "object") shown = JSON.stringify(value);
    return `<tr><th scope="row">${escape(name)}</th><td data-field="${escape(name)}">${escape(shown ?? "—")}</td></tr>`;
  });
  if (doc.lease) rows.push(`<tr><th scope="row">lease</th><td>${escape(doc.lease.runner || "?")} on ${escape(doc.lease.host || "?")}${doc.lease.by ? `, claimed with token ${escape(doc.lease.by)}` : ""}, expires ${when(doc.lease.expires)}</td></tr>`);
  return `<table class="fields">${rows.join("")}</table>`;
}

/** An attempt's provenance in one line: "Python 3.11.7 · usertasks git abc1234 · graph
 * 1a2b3c4d… · runner 0.1.0 on host"; the whole record shows on hover. */
function provenance(record) {
  if (!record) return "";
  const parts = record.python ? [`Python ${record.python}`] : [];
  for (const [module, origin] of Object.entries(record.code || {})) {
    if (origin === "stdlib") continue;
    if (typeof origin !== "object" || origin === null) { parts.push(`${module} (${origin})`); continue; }
    const dist = origin.distribution;
    const version = dist ? `${dist === module ? "" : `${dist} `}${origin.version ?? "?"}` : "";
    parts.push([module, version, origin.git ? `git ${origin.git}` : ""].filter(Boolean).join(" "));
  }
  if (record.graph) parts.push(`graph ${String(record.graph).slice(0, 8)}…`);
  if (record.image) parts.push(`image ${record.image}`);
  parts.push(`runner ${record.runner ?? "?"}${record.host ? ` on ${record.host}` : ""}`);
  return `<div class="caption provenance" title="${escape(JSON.stringify(record, null, 1))}">${escape(parts.join(" · "))}</div>`;
}

function entry(item) {
  if (item.kind === "delivery") return deliveryEntry(item);
  if ((item.kind || "attempt") === "action") {
    const linked = item.changes && (item.changes.of || item.changes.as);
    const changes = linked
      ? ` <a href="#/work/${encodeURIComponent(linked)}" class="mono">${escape(linked)}</a>`
      : item.changes ? ` ${escape(JSON.stringify(item.changes))}` : "";
    return `<li class="action"><span class="when">${when(item.at)}</span>
      <strong>${escape(item.action)}</strong> by ${escape(item.by || "someone unknown")}${changes}</li>`;
  }
  const error = item.error;
  const trace = error && error.traceback
    ? `<details><summary>traceback</summary><pre class="trace">${escape(error.traceback)}</pre></details>` : "";
  return `<li class="attempt ${escape(item.outcome)}" data-attempt="${item.attempt}">
    <span class="when">${when(item.started || item.claimed)}</span>
    <strong>attempt ${item.attempt}: <span class="status ${escape(item.outcome)}">${escape(item.outcome)}</span></strong>
    ${item.reason ? `<span class="caption">(${escape(item.reason)})</span>` : ""}
    <div class="caption">${escape(item.runner || "?")} on ${escape(item.host || "?")}, took ${duration(item.started || item.claimed, item.stopped)}${item.nodes ? `, ${item.nodes.length} node runs` : ""}${item.by ? `, reported by ${escape(item.by)}` : ""}</div>
    ${provenance(item.provenance)}
    ${error ? `<div class="error"><strong>${escape(error.type)}</strong>: ${escape(error.message)}</div>${trace}` : ""}</li>`;
}

function files(title, paths, kind) {
  if (!paths || !paths.length) return "";
  const items = paths.map((path, n) => `<li data-${kind}="${n}"><span class="mono">${escape(path)}</span>
    <span class="file-state caption">loading…</span></li>`).join("");
  return `<section><h2>${title}</h2><ul class="files ${kind}s">${items}</ul></section>`;
}

/** Renew an item's links at half their lifetime while it shows, so a late click works. */
function keepFresh(item, path, lifetime, signal) {
  const timer = setTimeout(async () => {
    if (!item.isConnected) return;
    try {
      const link = await signed(path, signal);
      for (const a of item.querySelectorAll(".file-links a")) a.href = link.url;
      keepFresh(item, path, link.lifetime, signal);
    } catch { /* the page or the server went away: a click then says why */ }
  }, lifetime * 500);
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
}

async function showFiles(main, doc, signal) {
  for (const [kind, paths] of [["plot", doc.plots || []], ["product", doc.products || []]]) {
    paths.forEach(async (path, n) => {
      const item = main.querySelector(`[data-${kind}="${n}"]`);
      const state = item.querySelector(".file-state");
      const name = path.split("/").pop();
      try {
        const link = await signed(path, signal);
        const links = Object.assign(document.createElement("span"), { className: "file-links" });
        links.append(
          Object.assign(document.createElement("a"), { href: link.url, target: "_blank", rel: "noopener noreferrer", textContent: "open" }),
          " · ",
          Object.assign(document.createElement("a"), { href: link.url, download: name, textContent: "download" }));
        state.replaceWith(links);
        if (kind === "plot" && IMAGES.test(path)) {
          item.append(Object.assign(document.createElement("img"), { src: link.url, alt: `plot ${name}`, className: "plot" }));
        }
        keepFresh(item, path, link.lifetime, signal);
      } catch (error) {
        if (signal.aborted) return;
        state.textContent = `not shown: ${error.message}`;
        state.classList.add("refused");
      }
    });
  }
}

/** How many times a work was shown: a follow-up of an older showing stops. */
let showings = 0;

/** While the work runs, ask the server to answer as soon as it ends (a read that
 * waits: no polling); while it is queued, look every 2 s for its start. Then show it
 * anew, unless it was shown anew since (after an operator's action, which says what it
 * did). */
async function followEnd(main, signal, status, doc, showing) {
  if (!["queued", "running"].includes(doc.status)) return;
  const queued = doc.status === "queued";
  const path = `/buckets/work/${encodeURIComponent(doc.id)}${queued ? "" : "?wait=25"}`;
  while (!signal.aborted && showing === showings) {
    if (queued) await new Promise((done) => setTimeout(done, 2000));
    let now;
    try {
      now = await api(path, { signal });
    } catch (error) {
      if (signal.aborted) return;
      if (error.status === 401) { status.lost(error); return; }
      await new Promise((done) => setTimeout(done, 5000)); // the server is away: again soon
      continue;
    }
    if (now.status !== doc.status || now.attempt !== doc.attempt) {
      if (main.isConnected && !signal.aborted && showing === showings) await show(main, signal, status);
      return;
    }
  }
}

/** Show the work whose id follows #/work/ in the URL. */
export async function show(main, signal, status) {
  const showing = ++showings; // from now on, older showings' follow-ups stop
  const id = decodeURIComponent(location.hash.replace(/^#\/work\//, "").split("?")[0]);
  main.innerHTML = `<h1>Work <span class="mono">${escape(id)}</span></h1><p class="caption">Loading…</p>`;
  let doc;
  try {
    doc = await api(`/buckets/work/${encodeURIComponent(id)}`, { signal });
    status.live();
  } catch (error) {
    if (signal.aborted) return;
    if (error.status === 401) { status.lost(error); return; }
    main.innerHTML = `<h1>Work <span class="mono">${escape(id)}</span></h1>
      <div class="empty error">${error.status === 404 ? "There is no work with this id." : `Cannot load it: ${escape(error.message)}`}
      <a href="#/results">Search the results</a>.</div>`;
    return;
  }
  let who = null;
  try { who = await me(); } catch { /* no actions, then */ }
  const history = doc.history || [];
  main.innerHTML = `<h1>Work <span class="mono">${escape(doc.id)}</span>
      <span class="status ${escape(doc.status)}">${escape(doc.status)}</span></h1>
    <p class="caption" id="notice" role="status"></p>
    <div class="detail">
      ${outcomeSection(doc)}
      ${panel(doc, who)}
      ${logSection(doc)}
      <section><h2>Fields</h2>${fields(doc)}</section>
      <section><h2>Parameters</h2>${json(doc.parameters)}</section>
      <section><h2>Results</h2>${json(doc.results)}</section>
      ${graphSection(doc)}
      <section><h2>History</h2>${history.length
        ? `<ol class="timeline">${history.map(entry).join("")}</ol>` : '<p class="caption">No attempt yet.</p>'}</section>
      ${files("Plots", doc.plots, "plot")}${files("Products", doc.products, "product")}
      ${noticesSection(doc)}
    </div>`;
  showFiles(main, doc, signal);
  followLog(main, doc, signal);
  followNotices(main, doc, signal);
  followGraph(main, doc, signal, () => showing === showings);
  explain(main, doc, signal);
  followEnd(main, signal, status, doc, showing);
  wire(main, doc, async (message, nextId) => {
    if (nextId) { location.hash = `#/work/${encodeURIComponent(nextId)}`; return; }
    if (nextId === null && message.startsWith("Delete")) {
      main.innerHTML = `<h1>Deleted</h1><p>The work ${escape(doc.id)} is gone. <a href="#/buckets">Back to the buckets</a>.</p>`;
      return;
    }
    await show(main, signal, status);
    main.querySelector("#notice").textContent = message;
  });
}

// Buckets: queued and running works, refreshed every few seconds; a running work shows
// its runner, host, attempt, and time used against its timeout; a paused pipeline says
// so above the table and beside each of its queued works, with Resume for operators.

import { bulk, mayAct, me, reporter, setPaused, userHeaders } from "./actions.js";
import { api, refreshing } from "./api.js";
import { age, escape, pager, when } from "./format.js";

const PAGE = 100;
const REFRESH_MS = 3000;

function fromHash(hash) {
  const params = new URLSearchParams(hash.split("?")[1] || "");
  const status = ["queued", "running"].includes(params.get("status")) ? params.get("status") : "";
  return { pipeline: params.get("pipeline") || "", status,
           page: Math.max(1, parseInt(params.get("page") || "1", 10) || 1) };
}

function toHash(state) {
  const params = new URLSearchParams();
  if (state.pipeline) params.set("pipeline", state.pipeline);
  if (state.status) params.set("status", state.status);
  if (state.page > 1) params.set("page", String(state.page));
  const query = params.toString();
  return `#/buckets${query ? `?${query}` : ""}`;
}

function progress(doc, now) {
  if (doc.status !== "running" || !doc.start) return "";
  const used = Math.max(0, now - doc.start);
  const share = Math.min(1, used / (doc.timeout || 1));
  const late = share >= 0.8 ? " late" : "";
  return `<span class="elapsed${late}" title="${Math.round(100 * share)} % of the timeout">
    <span class="bar" style="width:${(100 * share).toFixed(0)}%"></span></span>
    ${age(used)} of ${age(doc.timeout)}`;
}

function row(doc, now, paused) {
  const lease = doc.lease || {};
  let waiting = doc.status === "queued" && doc.not_before && doc.not_before > now
    ? ` <span class="caption">(retry in ${age(doc.not_before - now)})</span>` : "";
  if (doc.status === "queued" && paused.has(doc.pipeline)) waiting += ' <span class="badge" title="its pipeline is paused: no runner takes it">paused</span>';
  return `<tr data-id="${escape(doc.id)}">
    <td class="mono id"><a href="#/work/${encodeURIComponent(doc.id)}" title="${escape(doc.id)}">${escape(doc.id)}</a></td><td>${escape(doc.pipeline)}</td>
    <td><span class="status ${doc.status}">${doc.status}</span>${waiting}</td>
    <td>${doc.priority}</td><td>${doc.attempt}</td>
    <td>${escape(lease.runner || "")}</td><td>${escape(lease.host || "")}</td>
    <td>${progress(doc, now)}</td><td>${when(doc.creation)}</td></tr>`;
}

/** Who may act, once known: the paused notices then offer Resume. */
let operator = false;

/** A notice per paused pipeline: why its queued works wait, who paused it, Resume. */
function showPaused(box, paused, mayResume) {
  const key = JSON.stringify([mayResume, paused.map((p) => [p.name, (p.counts || {}).queued || 0])]);
  if (box.dataset.key === key) return;  // unchanged: keep a focused button where it is
  box.dataset.key = key;
  box.innerHTML = paused.map((p) => {
    const change = [...(p.history || [])].reverse().find((c) => c.action === "pause");
    const queued = (p.counts || {}).queued || 0;
    return `<div class="paused" role="group" data-paused="${escape(p.name)}" aria-label="Pipeline ${escape(p.name)} is paused">
      <span class="badge">paused</span> <span class="why"><strong>${escape(p.name)}</strong> is paused: runners take none
      of its ${queued} queued work${queued === 1 ? "" : "s"}${change ? ` (paused by ${escape(change.by || "someone unknown")}, ${when(change.at)})` : ""}.</span>
      ${mayResume ? `<button type="button" data-resume="${escape(p.name)}">Resume ${escape(p.name)}</button>` : ""}
      <span class="caption" role="status"></span></div>`;
  }).join("");
  for (const button of box.querySelectorAll("[data-resume]")) {
    button.addEventListener("click", async () => {
      const say = reporter(button.nextElementSibling);
      button.disabled = true;
      try {
        await setPaused(button.dataset.resume, false);
        say("Resumed: runners take its works again.");
      } catch (error) {
        say(`Resume failed: ${error.message}`, true);
        button.disabled = false;
      }
    });
  }
}

async function load(main, state, signal) {
  const params = new URLSearchParams();
  for (const p of state.pipeline.split(",").map((s) => s.trim()).filter(Boolean)) params.append("pipeline", p);
  for (const s of state.status ? [state.status] : ["queued", "running"]) params.append("status", s);
  params.set("skip", String((state.page - 1) * PAGE));
  params.set("limit", String(PAGE));
  const [docs, counts, pipelines] = await Promise.all([
    api(`/buckets/work?${params}`, { signal }), api("/buckets/counts", { signal }),
    api("/buckets/pipelines", { signal })]);
  const wanted = state.pipeline.split(",").map((s) => s.trim()).filter(Boolean);
  const paused = pipelines.filter((p) => p.paused && (!wanted.length || wanted.includes(p.name)));
  showPaused(main.querySelector("#paused"), paused, operator);
  const pausedNames = new Set(paused.map((p) => p.name));
  let total = 0;
  for (const [pipeline, byStatus] of Object.entries(counts)) {
    if (wanted.length && !wanted.includes(pipeline)) continue;
    for (const s of state.status ? [state.status] : ["queued", "running"]) total += byStatus[s] || 0;
  }
  const table = main.querySelector("#table");
  if (!docs.length) {
    table.innerHTML = `<div class="empty">Nothing ${state.status || "queued or running"}${wanted.length ? " in these pipelines" : ""} right now.</div>`;
    return;
  }
  const now = Date.now() / 1000;
  table.innerHTML = `<div class="scroll"><table class="results"><thead><tr>
    <th scope="col">id</th><th scope="col">pipeline</th><th scope="col">status</th>
    <th scope="col">priority</th><th scope="col">attempt</th><th scope="col">runner</th>
    <th scope="col">host</th><th scope="col">elapsed of timeout</th><th scope="col">created</th>
    </tr></thead><tbody>${docs.map((d) => row(d, now, pausedNames)).join("")}</tbody></table></div>
    ${pager(state.page, PAGE, total, (to) => toHash({ ...state, page: to }), "Pages of works")}`;
}

function bulkBar() {
  const priorities = [5, 4, 3, 2, 1].map((p) => `<option value="${p}">${p}</option>`).join("");
  return `<div class="bulk" role="group" aria-label="Actions on every work this filter shows">
    <button type="button" data-bulk="cancel">Cancel every matching work…</button>
    <label>Priority <select name="bulk-priority">${priorities}</select></label>
    <button type="button" data-bulk="change">Set it on every matching queued work…</button>
    <span class="caption" role="status" id="bulk-state"></span></div>`;
}

function wireBulk(main, state, refresh) {
  const say = reporter(main.querySelector("#bulk-state"));
  const filter = {
    pipeline: state.pipeline.split(",").map((p) => p.trim()).filter(Boolean),
    status: state.status ? [state.status] : ["queued", "running"],
  };
  const run = async (label, body) => {
    await bulk(label, (confirm) => api("/buckets/bulk",
      { method: "POST", headers: userHeaders(), body: { ...body, filter, confirm } }), say);
    refresh();
  };
  main.querySelector('[data-bulk="cancel"]').addEventListener("click", () =>
    run("Cancel", { action: "cancel" }));
  main.querySelector('[data-bulk="change"]').addEventListener("click", () => {
    const priority = Number(main.querySelector('[name="bulk-priority"]').value);
    run(`Set priority ${priority}`, { action: "change", priority });
  });
}

/** Show queued and running works, refreshing until `signal` aborts. */
export async function show(main, signal, status) {
  const state = fromHash(location.hash);
  const option = (value, label) => `<option value="${value}" ${state.status === value ? "selected" : ""}>${label}</option>`;
  main.innerHTML = `<h1>Buckets</h1>
    <form id="filter" class="filters" role="search">
      <label>Pipelines<input name="pipeline" value="${escape(state.pipeline)}" placeholder="a, b"></label>
      <label>Status<select name="status">${option("", "queued and running")}${option("queued", "queued")}${option("running", "running")}</select></label>
      <div class="actions"><button type="submit">Show</button><a href="#/buckets">Clear</a></div>
    </form>
    <div id="paused"></div>
    <div id="bulk"></div>
    <p class="caption">Newest first; refreshed every ${REFRESH_MS / 1000} s.</p>
    <div id="table"><p class="caption">Loading…</p></div>`;
  main.querySelector("#filter").addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    location.hash = toHash({ pipeline: String(data.get("pipeline") || "").trim(),
                             status: String(data.get("status") || ""), page: 1 });
  });
  operator = false;
  me().then((who) => {
    if (!mayAct(who) || signal.aborted) return;
    operator = true;
    main.querySelector("#bulk").innerHTML = bulkBar();
    const refresh = () => load(main, state, signal).catch(() => {});
    wireBulk(main, state, refresh);
    refresh();  // the paused notices now offer Resume
  }, () => {});
  await refreshing(() => load(main, state, signal), signal, status, REFRESH_MS);
}

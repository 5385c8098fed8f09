// Runners: every runner on record, online first, refreshed every few seconds. Each row
// says whether it is there (online; offline: not seen for its lease; stopped: it said
// goodbye), what it takes, the works it holds (as links), and its attempts' counts. An
// offline runner that still holds works is called out: those come back to the queue
// only when their leases expire.

import { api, refreshing } from "./api.js";
import { age, escape, number, when } from "./format.js";

const REFRESH_MS = 3000;
const STATES = ["online", "offline", "stopped"];

function takes(runner) {
  const parts = [runner.pipelines && runner.pipelines.length
    ? runner.pipelines.map(escape).join(", ") : "<em>every pipeline</em>"];
  if (runner.site) parts.push(`site ${escape(runner.site)}`);
  if (runner.tags && runner.tags.length) parts.push(`tags ${runner.tags.map(escape).join(", ")}`);
  return parts.join("; ");
}

function holds(runner) {
  if (!runner.holding) return '<span class="caption">nothing</span>';
  const links = (runner.works || []).map((w) =>
    `<a class="mono" href="#/work/${encodeURIComponent(w.id)}" title="${escape(w.pipeline)}, attempt ${w.attempt}">${escape(w.id)}</a>`);
  const more = runner.holding > links.length ? ` <span class="caption">and ${number(runner.holding - links.length)} more</span>` : "";
  return `<strong>${number(runner.holding)}</strong> <span class="held">${links.join(" ")}${more}</span>`;
}

function row(runner, now) {
  const pace = runner.prefetch ? `, prefetch ${runner.prefetch}` : "";
  const note = runner.state === "offline" && runner.holding
    ? ' <span class="caption">its works return to the queue when their leases expire</span>' : "";
  const where = [runner.host, runner.pid ? `pid ${runner.pid}` : "", runner.version ? `v${runner.version}` : ""]
    .filter(Boolean).map(escape).join(" · ");
  const cell = (label, html, extra = "") => `<td data-label="${label}"${extra}>${html}</td>`;
  return `<tr data-runner="${escape(runner.id)}" data-state="${runner.state}">
    <th scope="row" title="${escape(runner.id)}">${escape(runner.name || runner.id)}
      <span class="caption where">${where}</span></th>
    ${cell("state", `<span class="runner-state ${runner.state}">${runner.state}</span>${note}`, ' class="wrap"')}
    ${cell("last seen", `${age(Math.max(0, now - runner.last_seen))} ago`, ` title="${when(runner.last_seen)}"`)}
    ${cell("holds", holds(runner))}
    ${cell("takes", takes(runner), ' class="wrap"')}
    ${cell("runs", `${number(runner.concurrency)} at once${pace}`)}
    ${cell("done", number(runner.done), ' class="num"')}
    ${cell("failed", number(runner.failed), ` class="num${runner.failed ? " bad" : ""}"`)}
    ${cell("function", escape(runner.runs || "each work's own"), ' class="mono"')}
    ${cell("started", runner.start ? `${age(Math.max(0, now - runner.start))} ago` : "—", ` title="${when(runner.start)}"`)}
    </tr>`;
}

function summary(runners) {
  const counts = Object.fromEntries(STATES.map((s) => [s, runners.filter((r) => r.state === s).length]));
  return STATES.map((s) => `<li class="${s}"><span class="n">${counts[s]}</span> ${s}</li>`).join("");
}

async function load(main, signal) {
  const runners = await api("/buckets/runners", { signal });
  main.querySelector("#summary").innerHTML = summary(runners);
  const table = main.querySelector("#table");
  if (!runners.length) {
    table.innerHTML = `<div class="empty">No runner on record. Start one with
      <code>workflow run PIPELINE</code>; it shows here at once.</div>`;
    return;
  }
  const now = Date.now() / 1000;
  table.innerHTML = `<div class="scroll"><table class="results runners"><thead><tr>
    <th scope="col">runner</th><th scope="col">state</th><th scope="col">last seen</th>
    <th scope="col">holds</th><th scope="col">takes</th><th scope="col">runs</th>
    <th scope="col">done</th><th scope="col">failed</th><th scope="col">function</th>
    <th scope="col">started</th>
    </tr></thead><tbody>${runners.map((r) => row(r, now)).join("")}</tbody></table></div>`;
}

/** Show the runners, refreshing until `signal` aborts. */
export async function show(main, signal, status) {
  main.innerHTML = `<h1>Runners</h1>
    <ul class="counts" id="summary" aria-label="Runners by state"></ul>
    <p class="caption">Online first; offline means not seen for its lease; runners gone
      for a day are forgotten. Refreshed every ${REFRESH_MS / 1000} s.</p>
    <div id="table"><p class="caption">Loading…</p></div>`;
  await refreshing(() => load(main, signal), signal, status, REFRESH_MS);
}

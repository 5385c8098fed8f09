// The dashboard: one card per pipeline, updated live from /ui/events. Cards are kept
// by pipeline and only their figures are rewritten, so an operator's open editor or
// focused button survives every update.

import { bulk, mayAct, me, reporter, setPaused, userHeaders } from "./actions.js";
import { api, events } from "./api.js";
import { chart } from "./chart.js";
import { age, escape, number, percent, when } from "./format.js";
import { errorLine } from "./outcome.js";
import { fill, firingBadges, firingLines, rulesEditor, wireRules } from "./rules.js";

const STATUSES = ["queued", "running", "success", "failure", "cancelled"];
const DEFAULTS = [
  ["priority", "Priority", 1, 5, "1"], ["retries", "Retries", 0, 5, "1"],
  ["timeout", "Timeout (s)", 1, 259200, "1"], ["backoff", "Backoff (s)", 0, 86400, "any"],
];

/** The results URL of `pipeline`'s works of `status` ("" any) created in the last hour. */
function lastHour(pipeline, status) {
  const d = new Date(Date.now() - 3600e3);
  const pad = (n) => String(n).padStart(2, "0");
  const since = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `#/results?${new URLSearchParams({ pipeline, ...(status ? { status } : {}), since })}`;
}

/** Where a count of `status` works of `pipeline` are listed. */
function listOf(pipeline, status) {
  const page = status === "queued" || status === "running" ? "buckets" : "results";
  return `#/${page}?${new URLSearchParams({ pipeline, status })}`;
}

function figures(pipeline) {
  const name = pipeline.name;
  const counts = STATUSES.map((status) => `<li class="${status}" data-status="${status}"><a data-key="${status}"
    href="${escape(listOf(name, status))}"><span class="n">${number(pipeline.counts[status])}</span> ${status}</a></li>`).join("");
  const fact = (key, href, text) => `<a data-key="${key}" href="${escape(href)}">${text}</a>`;
  const change = pipeline.last_change;
  const changed = change
    ? `<dt>last change</dt><dd data-fact="changed">${escape(change.action)} by ${escape(change.by || "someone unknown")}, ${when(change.at)}</dd>` : "";
  return `${firingLines(pipeline)}<ul class="counts">${counts}</ul>
    <dl class="facts">
      <dt>oldest queued</dt><dd data-fact="oldest">${fact("oldest", listOf(name, "queued"), age(pipeline.oldest_queued_s))}</dd>
      <dt>finished, last hour</dt><dd data-fact="hour">${fact("hour", lastHour(name, ""), number(pipeline.finished_last_hour))}</dd>
      <dt>failure rate, last hour</dt><dd data-fact="failure-rate">${fact("rate", lastHour(name, "failure"), percent(pipeline.failure_rate))}</dd>
      ${changed}
    </dl>
    ${chart(pipeline.per_minute)}`;
}

function controls(name) {
  const id = (field) => `d-${escape(name)}-${field}`;
  const inputs = DEFAULTS.map(([field, label, min, max, step]) =>
    `<label for="${id(field)}">${label}</label><input id="${id(field)}" name="${field}" type="number"
      min="${min}" max="${max}" step="${step}" placeholder="none">`).join("");
  return `<div class="pipeline-actions">
    <button type="button" data-act="pause"></button>
    <button type="button" data-act="cancel-queued" class="quiet">Cancel queued…</button>
    <details data-editor="defaults"><summary>Defaults for new works</summary>
      <form data-act="defaults" class="defaults">${inputs}
        <p class="caption">Empty means no default. They apply to deposits that do not set them.</p>
        <button type="submit">Save defaults</button></form></details>
    ${rulesEditor()}
    <p class="caption" role="status" data-state></p></div>`;
}

const shown = new WeakMap();

/** Put `html` in `box` if it changed, keeping the focus on the link it was on. */
function replace(box, html) {
  if (shown.get(box) === html) return;
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  box.innerHTML = html;
  shown.set(box, html);
  if (focused) box.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

/** The newest failed works: when, pipeline, error, and a link to each (and its retry). */
function failures(list, now) {
  const head = `<h2>Latest failures <a class="caption" data-key="all" href="#/results?status=failure">all failures →</a></h2>`;
  if (!list.length) return `${head}<p class="caption">No failed work.</p>`;
  const items = list.map((f, n) => {
    const error = f.error || {};
    const retried = f.retried_as ? ` <a class="mark" data-key="r${n}" href="#/work/${encodeURIComponent(f.retried_as)}"
      title="retried as ${escape(f.retried_as)}">retried as …${escape(f.retried_as.slice(-6))}</a>` : "";
    return `<li data-failure="${escape(f.id)}"><span data-cell="age">${age(f.stop ? now - f.stop : null)} ago</span>
      <a data-cell="pipeline" data-key="p${n}" href="${escape(listOf(f.pipeline, "failure"))}">${escape(f.pipeline)}</a>
      <span data-cell="error" title="${escape(`${error.type || "error"}: ${error.message || ""}`)}">${errorLine(error, 120)}</span>
      <span data-cell="work"><a class="mono" data-key="w${n}" href="#/work/${encodeURIComponent(f.id)}" title="${escape(f.id)}">…${escape(f.id.slice(-8))}</a>${retried}</span></li>`;
  }).join("");
  return `${head}<ul class="failure-list">${items}</ul>`;
}

/** Keep one card per pipeline in `grid`, made once and then only refreshed. */
function render(grid, snapshot, operator, latest) {
  const seen = new Set();
  for (const pipeline of snapshot.pipelines) {
    seen.add(pipeline.name);
    latest.set(pipeline.name, pipeline);
    let card = grid.querySelector(`article[data-pipeline="${CSS.escape(pipeline.name)}"]`);
    if (!card) {
      card = document.createElement("article");
      card.className = "card";
      card.dataset.pipeline = pipeline.name;
      card.innerHTML = `<h2>${escape(pipeline.name)} <span class="badge" hidden>paused</span><span class="alerts"></span></h2>
        <div class="figures"></div>${operator ? controls(pipeline.name) : ""}`;
      if (operator) wireCard(card, pipeline.name, latest);
      grid.append(card);
    }
    card.querySelector(".badge").hidden = !pipeline.paused;
    replace(card.querySelector(".alerts"), firingBadges(pipeline));
    replace(card.querySelector(".figures"), figures(pipeline));
    fill(card, pipeline);
    const pause = card.querySelector('[data-act="pause"]');
    if (pause) pause.textContent = pipeline.paused ? "Resume" : "Pause";
    const editor = card.querySelector('details[data-editor="defaults"]');
    if (editor && !editor.open) {  // an open editor keeps what the operator typed
      const form = editor.querySelector("form");
      for (const [field] of DEFAULTS) form.elements[field].value = pipeline.defaults[field] ?? "";
    }
  }
  for (const card of grid.querySelectorAll("article[data-pipeline]"))
    if (!seen.has(card.dataset.pipeline)) card.remove();
}

function wireCard(card, name, latest) {
  const state = card.querySelector("[data-state]");
  const path = `/buckets/pipelines/${encodeURIComponent(name)}`;
  const say = reporter(state);
  card.querySelector('[data-act="pause"]').addEventListener("click", async (event) => {
    const resume = latest.get(name).paused;
    event.target.disabled = true;
    try {
      const settings = await setPaused(name, !resume);
      latest.get(name).paused = settings.paused;
      card.querySelector(".badge").hidden = !settings.paused;
      event.target.textContent = settings.paused ? "Resume" : "Pause";
      say(settings.paused ? "Paused: runners get no work of it." : "Resumed.");
    } catch (error) {
      say(`${resume ? "Resume" : "Pause"} failed: ${error.message}`, true);
    } finally {
      event.target.disabled = false;
    }
  });
  card.querySelector('[data-act="cancel-queued"]').addEventListener("click", () =>
    bulk(`Cancel the queued works of ${name}`, (confirm) => api("/buckets/bulk", {
      method: "POST", headers: userHeaders(),
      body: { action: "cancel", filter: { pipeline: [name], status: ["queued"] }, confirm } }), say));
  const details = card.querySelector('details[data-editor="defaults"]');
  const form = details.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const defaults = {};
    for (const [field] of DEFAULTS) {
      const value = form.elements[field].value.trim();
      defaults[field] = value === "" ? null : Number(value);
    }
    try {
      const settings = await api(path, { method: "PATCH", headers: userHeaders(), body: { defaults } });
      latest.get(name).defaults = settings.defaults;
      details.open = false;
      say("Defaults saved.");
    } catch (error) {
      say(`Not saved: ${error.message}`, true);
    }
  });
  wireRules(card, name, say, (settings) => { latest.get(name).rules = settings.rules; });
}

/** Show the dashboard in `main` until `signal` aborts; `status` reports the stream. */
export async function show(main, signal, status) {
  main.innerHTML = `<h1>Dashboard</h1><div id="pipelines" aria-live="off"><p class="caption">Loading…</p></div>`;
  const box = main.querySelector("#pipelines");
  const latest = new Map();
  let operator = false;
  try { operator = mayAct(await me()); } catch { /* the stream says why */ }
  let delay = 1000;
  while (!signal.aborted) {
    try {
      for await (const { event, data } of events("/ui/events", signal)) {
        if (event !== "dashboard") continue;
        if (!data.pipelines.length) {
          box.innerHTML = `<div class="empty">No pipelines yet. Work appears here
            as soon as it is deposited, for example with <code>workflow deposit PIPELINE --function
            module.func</code> or <code>Work(pipeline=..., parameters=...).deposit()</code>.</div>`;
        } else {
          if (!box.querySelector(".grid")) box.innerHTML = `<section class="latest-failures"></section><div class="grid"></div>`;
          replace(box.querySelector(".latest-failures"), failures(data.failures || [], data.time));
          render(box.querySelector(".grid"), data, operator, latest);
        }
        status.live();
        delay = 1000;
      }
    } catch (error) {
      if (signal.aborted) return;
      status.lost(error);
      if (error.status === 401) {
        box.innerHTML = `<p class="caption">The pipelines show once the server has an access token it accepts.</p>`;
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

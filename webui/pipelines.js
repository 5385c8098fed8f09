// Pipelines: the runs of deployed pipeline configurations, newest first, each with its
// stages as a row of steps (status, works done of made, why a step ended as it did)
// and the step's works as links; and the schedules with their next run. Operators
// cancel a running run, retry an ended one's failed steps, pause and resume schedules.
// Refreshed every few seconds.

import { mayAct, me, userHeaders } from "./actions.js";
import { api, refreshing } from "./api.js";
import { escape, number, when } from "./format.js";

const REFRESH_MS = 3000;
const SHOWN_WORKS = 8;

function works(step) {
  if (!step.works.length) return "";
  const links = step.works.slice(0, SHOWN_WORKS).map((id) =>
    `<a class="mono" href="#/work/${encodeURIComponent(id)}" title="${escape(id)}">${escape(id.split("-").slice(-1)[0])}</a>`);
  const more = step.works.length > SHOWN_WORKS
    ? ` <span class="caption">and ${number(step.works.length - SHOWN_WORKS)} more</span>` : "";
  return `<div class="step-works" aria-label="works of ${escape(step.name)}">${links.join(" ")}${more}</div>`;
}

/** Where a step's works are meant to run (its runs_on, else the pipeline's): we start no
 * containers, so this names the runners it expects. */
function runsOn(run, name) {
  const body = (run.config && run.config.pipeline) || {};
  const spec = (body.steps || []).find((s) => s.name === name) || {};
  const where = spec.runs_on || body.runs_on;
  return where ? `<span class="caption">runs on ${escape([].concat(where).join(", "))}</span>` : "";
}

function stage(run, number_) {
  const steps = run.steps.filter((s) => s.stage === number_);
  const current = run.current_stage === number_ && run.status === "running";
  return `<li class="stage${current ? " current" : ""}"><span class="caption">stage ${number_}</span>
    ${steps.map((s) => `<div class="step" data-step="${escape(s.name)}" data-status="${escape(s.status)}">
      <strong>${escape(s.name)}</strong> <span class="status ${escape(s.status)}">${escape(s.status)}</span>
      ${s.works.length ? `<span class="caption">${number(s.succeeded)} of ${number(s.works.length)} succeeded</span>` : ""}
      ${runsOn(run, s.name)}
      ${s.reason ? `<div class="caption">${escape(s.reason)}</div>` : ""}${works(s)}</div>`).join("")}</li>`;
}

function runCard(run, acting) {
  const stages = [...new Set(run.steps.map((s) => s.stage))].sort((a, b) => a - b);
  const failed = run.steps.some((s) => s.status === "failure" || s.status === "cancelled");
  const buttons = !acting ? "" : run.status === "running"
    ? `<button type="button" data-act="cancel" data-run="${escape(run.id)}">Cancel</button>`
    : failed ? `<button type="button" data-act="retry" data-run="${escape(run.id)}">Retry failed steps</button>` : "";
  return `<section class="run" data-run="${escape(run.id)}" data-status="${escape(run.status)}">
    <h2>${escape(run.name)} <span class="status ${escape(run.status)}">${escape(run.status)}</span></h2>
    <p class="caption"><span class="mono">${escape(run.id)}</span> · started ${when(run.start)}
      ${run.user ? ` by ${escape(run.user)}` : ""}${run.stop ? ` · ended ${when(run.stop)}` : ""}</p>
    <ol class="stages">${stages.map((n) => stage(run, n)).join("")}</ol>${buttons}</section>`;
}

function scheduleRow(doc, acting) {
  const button = !acting || doc.status === "expired" ? "" : doc.status === "paused"
    ? `<button type="button" data-act="resume" data-schedule="${escape(doc.id)}">Resume</button>`
    : `<button type="button" data-act="pause" data-schedule="${escape(doc.id)}">Pause</button>`;
  const cell = (label, html) => `<td data-label="${label}">${html}</td>`;
  return `<tr data-schedule="${escape(doc.id)}"><th scope="row">${escape(doc.name)}
      <span class="caption mono">${escape(doc.id)}</span></th>
    ${cell("status", `<span class="status ${escape(doc.status)}">${escape(doc.status)}</span>`)}
    ${cell("cron", `<span class="mono">${escape(doc.cronspec)}</span> <span class="caption">${escape(doc.timezone)}</span>`)}
    ${cell("lives left", doc.lives === -1 ? "forever" : number(doc.lives))}
    ${cell("spawned", number(doc.has_spawned))}
    ${cell("next run", doc.next_time ? when(doc.next_time) : "—")}
    ${cell("", button)}</tr>`;
}

async function load(main, signal, acting) {
  const [runs, schedules] = await Promise.all([
    api("/pipelines?limit=50", { signal }), api("/schedules", { signal })]);
  main.querySelector("#runs").innerHTML = runs.length
    ? runs.map((run) => runCard(run, acting)).join("")
    : `<div class="empty">No pipeline run yet. Deploy a configuration with
       <code>workflow pipelines deploy FILE</code>.</div>`;
  main.querySelector("#schedules").innerHTML = schedules.length
    ? `<div class="scroll"><table class="results schedules"><thead><tr><th scope="col">schedule</th>
       <th scope="col">status</th><th scope="col">cron</th><th scope="col">lives left</th>
       <th scope="col">spawned</th><th scope="col">next run</th><th scope="col"></th></tr></thead>
       <tbody>${schedules.map((s) => scheduleRow(s, acting)).join("")}</tbody></table></div>`
    : '<p class="caption">No schedule: a configuration with a <code>schedule:</code> section makes one.</p>';
}

/** Show the pipeline runs and schedules, refreshing until `signal` aborts. */
export async function show(main, signal, status) {
  main.innerHTML = `<h1>Pipelines</h1>
    <p class="caption">Runs newest first, each stage's steps in order; refreshed every ${REFRESH_MS / 1000} s.</p>
    <p class="caption" id="pipeline-state" role="status"></p>
    <div id="runs"><p class="caption">Loading…</p></div>
    <h2>Schedules</h2><div id="schedules"></div>`;
  let acting = false;
  try { acting = mayAct(await me()); } catch { /* no actions, then */ }
  const state = main.querySelector("#pipeline-state");
  main.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const { act, run, schedule } = button.dataset;
    const path = run ? `/pipelines/${encodeURIComponent(run)}/${act}` : `/schedules/${encodeURIComponent(schedule)}/${act}`;
    if (act === "cancel" && !confirm("Cancel this run? Its queued and running works are cancelled.")) return;
    button.disabled = true;
    try {
      await api(path, { method: "POST", headers: userHeaders() });
      state.textContent = `${act}: done.`;
      await load(main, signal, acting);
    } catch (error) {
      state.textContent = `${act} failed: ${error.message}`;
      button.disabled = false;
    }
  });
  await refreshing(() => load(main, signal, acting), signal, status, REFRESH_MS);
}

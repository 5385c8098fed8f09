// The dashboard: one card per pipeline, updated live from /ui/events.

import { events } from "./api.js";
import { age, escape, number, percent } from "./format.js";

const STATUSES = ["queued", "running", "success", "failure", "cancelled"];

function chart(perMinute) {
  const { finished, failed } = perMinute;
  const top = Math.max(1, ...finished);
  const width = 240, height = 60, step = width / finished.length;
  const bars = finished.map((n, i) => {
    if (!n) return "";
    const h = Math.max(1, (n / top) * height);
    const bad = failed[i] ? Math.max(1, (failed[i] / top) * height) : 0;
    const x = (i * step).toFixed(1), w = Math.max(1, step - 1).toFixed(1);
    return `<rect class="done" x="${x}" y="${(height - h).toFixed(1)}" width="${w}" height="${h.toFixed(1)}"/>` +
      (bad ? `<rect class="failed" x="${x}" y="${(height - bad).toFixed(1)}" width="${w}" height="${bad.toFixed(1)}"/>` : "");
  }).join("");
  const total = finished.reduce((a, b) => a + b, 0);
  const bad = failed.reduce((a, b) => a + b, 0);
  const label = `Works finished per minute over the last hour: ${total} in all, ${bad} failed; highest minute ${top === 1 && !total ? 0 : top}.`;
  return `<svg class="chart" viewBox="0 0 ${width} ${height + 1}" preserveAspectRatio="none" role="img" aria-label="${escape(label)}">
    <title>${escape(label)}</title>${bars}<line class="axis" x1="0" y1="${height + 0.5}" x2="${width}" y2="${height + 0.5}"/></svg>`;
}

function card(pipeline) {
  const counts = STATUSES.map((status) =>
    `<li class="${status}" data-status="${status}"><span class="n">${number(pipeline.counts[status])}</span> ${status}</li>`).join("");
  return `<article class="card" data-pipeline="${escape(pipeline.name)}">
    <h2>${escape(pipeline.name)}${pipeline.paused ? ' <span class="badge">paused</span>' : ""}</h2>
    <ul class="counts">${counts}</ul>
    <dl class="facts">
      <dt>oldest queued</dt><dd data-fact="oldest">${age(pipeline.oldest_queued_s)}</dd>
      <dt>finished, last hour</dt><dd data-fact="hour">${number(pipeline.finished_last_hour)}</dd>
      <dt>failure rate, last hour</dt><dd data-fact="failure-rate">${percent(pipeline.failure_rate)}</dd>
    </dl>
    ${chart(pipeline.per_minute)}
    <div class="caption">finished per minute, last 60 minutes (failures in red)</div>
  </article>`;
}

function render(main, snapshot) {
  if (!snapshot.pipelines.length) {
    main.querySelector("#pipelines").innerHTML = `<div class="empty">No pipelines yet. Work appears here
      as soon as it is deposited, for example with <code>workflow deposit PIPELINE --function
      module.func</code> or <code>Work(pipeline=..., parameters=...).deposit()</code>.</div>`;
    return;
  }
  main.querySelector("#pipelines").innerHTML =
    `<div class="grid">${snapshot.pipelines.map(card).join("")}</div>`;
}

/** Show the dashboard in `main` until `signal` aborts; `status` reports the stream. */
export async function show(main, signal, status) {
  main.innerHTML = `<h1>Dashboard</h1><div id="pipelines" aria-live="off"><p class="caption">Loading…</p></div>`;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      for await (const { event, data } of events("/ui/events", signal)) {
        if (event === "dashboard") {
          render(main, data);
          status.live();
          delay = 1000;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      status.lost(error);
      if (error.status === 401) {
        main.querySelector("#pipelines").innerHTML =
          `<p class="caption">The pipelines show once the server has an access token it accepts.</p>`;
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

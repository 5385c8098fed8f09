// What a work came to, for an operator triaging a failure: its last error, where it ran,
// its attempts and the links between a work and its retry, why a queued one waits; and nested settings
// (config, notify) as fields rather than raw JSON.

import { api } from "./api.js";
import { age, duration, escape, when } from "./format.js";

/** The work's attempts, oldest first. */
export function attempts(doc) {
  return (doc.history || []).filter((e) => (e.kind || "attempt") === "attempt");
}

/** The error of the latest attempt that had one, or null. */
export function lastError(doc) {
  const failed = attempts(doc).filter((e) => e.error);
  return failed.length ? failed[failed.length - 1].error : null;
}

/** The id the latest `action` entry links to ("retried-as" → its "as"), or null. */
export function linked(doc, action, key) {
  const found = (doc.history || []).filter((e) => e.action === action && e.changes && e.changes[key]);
  return found.length ? found[found.length - 1].changes[key] : null;
}

/** `text` cut to `n` characters, with an ellipsis when cut. */
function short(text, n) {
  const s = String(text ?? "");
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** An error as the lists show it: its type in bold, its message cut to `n` characters. */
export function errorLine(error, n) {
  return `<strong>${escape(error.type || "error")}</strong>: ${escape(short(error.message, n))}`;
}

const workLink = (id) => `<a class="mono" href="#/work/${encodeURIComponent(id)}">${escape(id)}</a>`;

/** The work page's first section: status, error, where it ran, attempts, retry links. */
export function outcomeSection(doc) {
  const tries = attempts(doc);
  const last = tries[tries.length - 1] || {};
  const error = doc.status !== "success" ? lastError(doc) : null;
  const lease = doc.lease || {};
  const runner = lease.runner || last.runner, host = lease.host || last.host;
  const rows = [];
  const row = (name, html, key) => rows.push(`<dt>${name}</dt><dd data-outcome="${key}">${html}</dd>`);
  row("status", `<span class="status ${escape(doc.status)}">${escape(doc.status)}</span>${
    last.reason ? ` <span class="caption">(${escape(last.reason)})</span>` : ""}`, "status");
  if (error) {
    row("error", `<strong>${escape(error.type || "error")}</strong>: <span class="message">${escape(error.message || "")}</span>${
      error.traceback ? `<details><summary>traceback</summary><pre class="trace">${escape(error.traceback)}</pre></details>` : ""}`, "error");
  }
  row("where", runner || host ? `${escape(runner || "?")} on <strong>${escape(host || "?")}</strong>` : "not yet", "where");
  if (doc.start) row("ran", `${when(doc.start)}, ${doc.stop ? `took ${duration(doc.start, doc.stop)}` : `for ${age(Date.now() / 1000 - doc.start)}`}`, "when");
  const waiting = doc.status === "queued" && doc.not_before && doc.not_before > Date.now() / 1000
    ? `, next try in ${age(doc.not_before - Date.now() / 1000)}` : "";
  row("attempts", `${tries.length} of at most ${(doc.retries ?? 0) + 1}${waiting}`, "attempts");
  const as = linked(doc, "retried-as", "as"), of = linked(doc, "retry-of", "of");
  if (doc.status === "queued") row("why it waits", '<span class="caption">asking…</span>', "why");
  if (as) row("retried as", workLink(as), "retried-as");
  if (of) row("retry of", workLink(of), "retry-of");
  return `<section class="outcome ${escape(doc.status)}"><h2>Outcome</h2><dl class="facts">${rows.join("")}</dl></section>`;
}

/** Every leaf of a nested object as [dotted name, value]. */
function leaves(value, prefix = "") {
  if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.keys(value).length)
    return [[prefix, value]];
  return Object.entries(value).flatMap(([name, inner]) => leaves(inner, prefix ? `${prefix}.${name}` : name));
}

const isSet = (v) => v !== null && v !== undefined && !(Array.isArray(v) && !v.length)
  && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length);

/** A nested setting (config, notify) as a table of its fields, folded when none is set. */
export function nested(name, value) {
  const all = leaves(value || {});
  const set = all.filter(([, v]) => isSet(v)).length;
  const one = (v) => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v ?? "—"));
  const shown = (v) => (Array.isArray(v) ? v.map(one).join(", ") : one(v));
  const rows = all.map(([path, v]) =>
    `<tr><th scope="row">${escape(path)}</th><td data-field="${escape(`${name}.${path}`)}">${escape(isSet(v) ? shown(v) : "—")}</td></tr>`).join("");
  return `<details class="nested" data-nested="${escape(name)}"${set ? " open" : ""}>
    <summary>${set ? `${set} set` : "nothing set"}</summary><table class="fields">${rows}</table></details>`;
}

/** For a queued work, fill the outcome's "why it waits" with the server's reasons
 * (``GET /buckets/work/{id}/why``), most decisive first. */
/** Reasons about runners, which link to the Runners page. */
const RUNNERS = new Set(["no-runner", "busy"]);

export async function explain(main, doc, signal) {
  const cell = main.querySelector('[data-outcome="why"]');
  if (!cell) return;
  let answer;
  try {
    answer = await api(`/buckets/work/${encodeURIComponent(doc.id)}/why`, { signal });
  } catch (error) {
    if (!signal.aborted) cell.textContent = `cannot tell: ${error.message}`;
    return;
  }
  cell.innerHTML = answer.reasons.length
    ? `<ul class="reasons">${answer.reasons.map((r) =>
        `<li data-code="${escape(r.code)}"><strong>${escape(r.code)}</strong>: ${escape(r.message)}${
          RUNNERS.has(r.code) ? ' (<a href="#/runners">the runners</a>)' : ""}</li>`).join("")}</ul>`
    : "next in line: a runner of its pipeline takes it";
}

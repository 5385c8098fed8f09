// Operator actions: on one work (change priority and retries, cancel, delete, retry),
// and over many (a bulk action whose confirmation states how many works it touches).
// Shown only to a token that may act (GET /ui/whoami); the server refuses the rest anyway.

import { api, token } from "./api.js";
import { escape, number } from "./format.js";

const NAME_KEY = "workflow.user";
let known = null;

/** Who this browser's token is ({name, role, open, may}, from GET /ui/whoami), asked
 * once per page load and token. */
export async function me() {
  const asked = token();
  if (known === null || known.token !== asked) known = { token: asked, me: await api("/ui/whoami") };
  return known.me;
}

/** True when `who` (from me()) may act on works: an operator's or an admin's token. */
export function mayAct(who) {
  return Boolean(who && who.may && who.may.operator);
}

/** The name actions are recorded with (set in the page header). */
export function who() {
  return localStorage.getItem(NAME_KEY) || "web UI";
}

export function setWho(name) {
  localStorage.setItem(NAME_KEY, name.trim() || "web UI");
}

/** Headers that name who acts, for every call that changes something. */
export function userHeaders() {
  return { "X-Workflow-User": who() };
}

/** `say(text, bad)` for a status line: shows `text`, in red when `bad`. */
export function reporter(line) {
  return (text, bad = false) => { line.textContent = text; line.classList.toggle("refused", bad); };
}

/** Pause (`paused` true) or resume a pipeline; its new settings. */
export function setPaused(pipeline, paused) {
  return api(`/buckets/pipelines/${encodeURIComponent(pipeline)}/${paused ? "pause" : "resume"}`,
    { method: "POST", headers: userHeaders() });
}

/** A bulk action: `call(confirm)` first with null (the server only counts), then, once
 * the operator confirmed that number, with it; `say(text, bad)` reports. The server
 * refuses when more works match by then, so nothing beyond the confirmed count moves. */
export async function bulk(label, call, say) {
  try {
    say(`${label}: counting…`);
    const { matched } = await call(null);
    if (!matched) { say(`${label}: no work matches.`); return null; }
    const works = `${number(matched)} work${matched === 1 ? "" : "s"}`;
    if (!confirm(`${label}: this touches ${works}. Go ahead?`)) { say(`${label}: not done.`); return null; }
    say(`${label}: ${works}…`);
    const reply = await call(matched);
    const skipped = reply.skipped
      ? `, ${number(reply.skipped)} skipped (changed meanwhile${reply.reasons.length ? `: ${reply.reasons[0].reason}` : ""})` : "";
    say(`${label}: ${number(reply.done)} of ${number(reply.matched)} done${skipped}.`);
    return reply;
  } catch (error) {
    const more = error.body && error.body.error === "CountChanged" ? " Ask again to see the new count." : "";
    say(`${label} failed: ${error.message}.${more}`, true);
    return null;
  }
}

const options = (values, chosen) => values.map((v) =>
  `<option value="${v}" ${v === chosen ? "selected" : ""}>${v}</option>`).join("");

/** The actions panel for `doc`, or "" when there is nothing this role may do. */
export function panel(doc, who) {
  if (!mayAct(who)) return "";
  const parts = [];
  if (doc.status === "queued") {
    parts.push(`<form data-action="change" class="inline">
      <label>Priority <select name="priority">${options([1, 2, 3, 4, 5], doc.priority)}</select></label>
      <label>Retries <select name="retries">${options([0, 1, 2, 3, 4, 5], doc.retries)}</select></label>
      <button type="submit">Change</button></form>`);
  }
  if (doc.status === "queued" || doc.status === "running") {
    parts.push(`<button type="button" data-action="cancel">Cancel this work</button>
      <button type="button" data-action="delete" class="danger">Delete from the bucket</button>`);
  } else {
    parts.push(`<form data-action="retry"><label for="retry-parameters">Parameters for the new work (JSON)</label>
      <textarea id="retry-parameters" name="parameters" rows="4">${escape(JSON.stringify(doc.parameters ?? {}, null, 2))}</textarea>
      ${doc.graph ? `<label class="check"><input type="checkbox" name="from_failure"${doc.status === "failure" ? " checked" : ""}>
        From the point of failure: reuse what the graph's nodes gave (kept in the archive), run again only what failed and what lies downstream</label>` : ""}
      <button type="submit">Retry as a new work</button></form>`);
  }
  return `<section class="actions-panel"><h2>Actions</h2>
    ${parts.join("")}<p class="caption" role="status" id="action-state"></p></section>`;
}

/** Wire the panel's controls; `done(message, nextId)` runs after an action succeeded. */
export function wire(main, doc, done) {
  const state = main.querySelector("#action-state");
  if (!state) return;
  const headers = userHeaders;
  const act = async (label, call) => {
    state.textContent = `${label}…`;
    try {
      const reply = await call();
      done(`${label}: done.`, reply && reply.id !== doc.id ? reply.id : null);
    } catch (error) {
      state.textContent = `${label} failed: ${error.message}`;
      state.classList.add("refused");
    }
  };
  const id = encodeURIComponent(doc.id);
  main.querySelector('[data-action="change"]')?.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    act("Change", () => api(`/buckets/work/${id}`, { method: "PATCH", headers: headers(),
      body: { priority: Number(data.get("priority")), retries: Number(data.get("retries")) } }));
  });
  main.querySelector('[data-action="cancel"]')?.addEventListener("click", () => {
    if (confirm("Cancel this work? It moves to the results as cancelled.")) act("Cancel", () =>
      api(`/buckets/work/${id}/cancel`, { method: "POST", headers: headers() }));
  });
  main.querySelector('[data-action="delete"]')?.addEventListener("click", () => {
    if (confirm("Delete this work from the bucket? Nothing of it is kept.")) act("Delete", async () => {
      await api("/buckets/work/delete", { method: "POST", headers: headers(), body: { ids: [doc.id] } });
      return { id: null };
    });
  });
  main.querySelector('[data-action="retry"]')?.addEventListener("submit", (event) => {
    event.preventDefault();
    let parameters;
    const data = new FormData(event.target);
    const fromFailure = data.get("from_failure") === "on";
    try {
      parameters = JSON.parse(data.get("parameters") || "{}");
    } catch (error) {
      state.textContent = `The parameters are not JSON: ${error.message}`;
      state.classList.add("refused");
      return;
    }
    act(fromFailure ? "Retry from the point of failure" : "Retry", () => api(`/buckets/work/${id}/retry`,
      { method: "POST", headers: headers(), body: { parameters, from_failure: fromFailure } }));
  });
}

// A pipeline's alert rules on its dashboard card: which fire now (a badge in the card's
// title), and, for operators, an editor (one row per rule: its kind, what it watches,
// whom it tells) saved with PATCH /buckets/pipelines/{name} {"rules": [...]}.

import { userHeaders } from "./actions.js";
import { api } from "./api.js";
import { escape, when } from "./format.js";

const KINDS = {
  "failure-rate": "failure rate reaches",
  "oldest-queued": "oldest queued work waits",
  "no-runner": "no runner takes its work",
};
// Each input: [rule field, label, shown for kinds, to the form (from the rule), back].
const FIELDS = [
  ["threshold", "threshold (%)", ["failure-rate"], (v) => v * 100, (v) => v / 100],
  ["window", "over (min)", ["failure-rate"], (v) => v / 60, (v) => Math.round(v * 60)],
  ["minimum", "at least (works)", ["failure-rate"], (v) => v, (v) => Math.round(v)],
  ["limit", "for (min)", ["oldest-queued"], (v) => v / 60, (v) => v * 60],
];
let targets = null;

/** The targets the server has ({targets: [{name, type, where}]}), asked once. */
function knownTargets() {
  targets = targets || api("/notifications/targets").catch(() => ({ targets: [] }));
  return targets;
}

/** What fires now, in words, for the card's figures: a line per firing rule. */
export function firingLines(pipeline) {
  return Object.entries(pipeline.alerts || {}).filter(([, a]) => a.status === "firing")
    .map(([name, a]) => `<p class="alert-line" data-alert="${escape(name)}"><strong>${escape(name)}</strong>
      fired ${when(a.since)}: ${escape(a.message || "")}</p>`).join("");
}

/** What fires now, for the card's title: a badge per firing rule. */
export function firingBadges(pipeline) {
  return Object.entries(pipeline.alerts || {}).filter(([, a]) => a.status === "firing")
    .map(([name, a]) => `<span class="badge alert" title="${escape(a.message || "")}">alert: ${escape(name)}</span>`)
    .join(" ");
}

function row(rule, n) {
  const id = (field) => `r-${n}-${field}-${Math.random().toString(36).slice(2, 7)}`;
  const kinds = Object.entries(KINDS).map(([kind, label]) =>
    `<option value="${kind}"${rule.kind === kind ? " selected" : ""}>${label}</option>`).join("");
  const inputs = FIELDS.map(([field, label, only, show]) => {
    const value = rule[field] === undefined || rule[field] === null ? "" : show(rule[field]);
    const i = id(field);
    return `<span class="rule-field" data-for="${only.join(" ")}"><label for="${i}">${label}</label>
      <input id="${i}" name="${field}" type="number" min="0" step="any" value="${escape(value)}"></span>`;
  }).join("");
  const name = id("name"), kind = id("kind"), to = id("to");
  return `<fieldset class="rule" data-rule="${n}">
    <span class="rule-field"><label for="${name}">name</label><input id="${name}" name="name" required
      pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" value="${escape(rule.name || "")}"></span>
    <span class="rule-field"><label for="${kind}">when</label><select id="${kind}" name="kind">${kinds}</select></span>
    ${inputs}
    <span class="rule-field wide"><label for="${to}">tell (targets)</label><input id="${to}" name="to" required
      placeholder="slack, ops-mail" value="${escape((rule.to || []).join(", "))}"></span>
    <button type="button" class="quiet" data-act="remove-rule">Remove</button></fieldset>`;
}

/** Show only the inputs of each row's kind. */
function fit(form) {
  for (const set of form.querySelectorAll("fieldset.rule")) {
    const kind = set.querySelector("select").value;
    for (const field of set.querySelectorAll("[data-for]"))
      field.hidden = !field.dataset.for.split(" ").includes(kind);
  }
}

/** The editor, for an operator's card (closed; `fill` puts the rules in). */
export function rulesEditor() {
  return `<details data-editor="rules"><summary>Alert rules</summary>
    <form data-act="rules" class="rules" novalidate>
      <div class="rule-rows"></div>
      <p class="caption" data-targets></p>
      <div class="rule-buttons"><button type="button" class="quiet" data-act="add-rule">Add a rule</button>
      <button type="submit">Save rules</button></div></form></details>`;
}

/** Put `pipeline`'s rules in its closed editor (an open one keeps what is typed). */
export function fill(card, pipeline) {
  const editor = card.querySelector('details[data-editor="rules"]');
  if (!editor) return;
  const rules = pipeline.rules || [];
  editor.querySelector("summary").textContent = `Alert rules (${rules.length})`;
  if (editor.open) return;
  const key = JSON.stringify(rules);
  if (editor.dataset.shown === key) return;
  editor.dataset.shown = key;
  const form = editor.querySelector("form");
  form.querySelector(".rule-rows").innerHTML = rules.map(row).join("") ||
    '<p class="caption" data-none>No rule: add one to hear when this pipeline is in trouble.</p>';
  fit(form);
}

/** The rules the form holds, as the server takes them; throws naming what is wrong. */
function read(form) {
  return [...form.querySelectorAll("fieldset.rule")].map((set, n) => {
    const get = (name) => set.querySelector(`[name="${name}"]`).value.trim();
    const rule = { name: get("name"), kind: get("kind"),
      to: get("to").split(/[\s,]+/).filter(Boolean) };
    if (!rule.name) throw new Error(`rule ${n + 1} needs a name`);
    if (!rule.to.length) throw new Error(`rule ${rule.name} tells nobody: name a target`);
    for (const [field, , only, , back] of FIELDS) {
      const value = get(field);
      if (only.includes(rule.kind) && value !== "") rule[field] = back(Number(value));
    }
    return rule;
  });
}

/** Wire the editor of `name`'s card; `say(text, bad)` reports, `saved(settings)` keeps. */
export function wireRules(card, name, say, saved) {
  const editor = card.querySelector('details[data-editor="rules"]');
  const form = editor.querySelector("form");
  editor.addEventListener("toggle", async () => {
    if (!editor.open) return;
    const found = await knownTargets();
    const list = found.targets.map((t) => `${escape(t.name)} (${escape(t.type)})`).join(", ");
    form.querySelector("[data-targets]").innerHTML = list
      ? `Targets on this server: ${list}.` : "This server has no target: see WORKFLOW_NOTIFY_TARGETS.";
  });
  form.addEventListener("change", () => fit(form));
  form.addEventListener("click", (event) => {
    const act = event.target.dataset.act;
    if (act === "remove-rule") event.target.closest("fieldset").remove();
    if (act !== "add-rule") return;
    form.querySelector("[data-none]")?.remove();
    const rows = form.querySelector(".rule-rows");
    rows.insertAdjacentHTML("beforeend", row({ kind: "failure-rate", threshold: 0.5, window: 900, minimum: 5 },
      rows.children.length));
    fit(form);
    rows.lastElementChild.querySelector("input").focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const settings = await api(`/buckets/pipelines/${encodeURIComponent(name)}`,
        { method: "PATCH", headers: userHeaders(), body: { rules: read(form) } });
      saved(settings);
      editor.open = false;
      editor.dataset.shown = "";
      say(`Rules saved: ${settings.rules.length}.`);
    } catch (error) {
      say(`Rules not saved: ${error.message}`, true);
    }
  });
}

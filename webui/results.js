// Results search: filters in the URL (bookmarkable), sortable columns, pages, and the
// export of the whole search as CSV or JSON.

import { bulk, mayAct, me, reporter, userHeaders } from "./actions.js";
import { api, blob } from "./api.js";
import { duration, escape, pager, when } from "./format.js";
import { attempts, errorLine, lastError, linked } from "./outcome.js";

const PAGE = 50;
const FIELDS = ["pipeline", "status", "tag", "event", "site", "user", "since", "until", "text"];
const LISTS = new Set(["pipeline", "tag", "event"]);
const COLUMNS = [
  ["id", "id", false], ["pipeline", "pipeline", true], ["status", "status", true], ["error", null, false],
  ["user", "user", true], ["site", "site", true], ["tags", "tags", false],
  ["created", "creation", true], ["stopped", "stop", true], ["took", null, false],
  ["attempts", "attempt", true],
];

/** The search the URL describes: {filters, sort, order, page}. */
export function fromHash(hash) {
  const params = new URLSearchParams(hash.split("?")[1] || "");
  const filters = {};
  for (const name of FIELDS) if (params.get(name)) filters[name] = params.get(name);
  return {
    filters, sort: params.get("sort") || "creation",
    order: params.get("order") === "asc" ? "asc" : "desc",
    page: Math.max(1, parseInt(params.get("page") || "1", 10) || 1),
  };
}

function toHash(state) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
  if (state.sort !== "creation") params.set("sort", state.sort);
  if (state.order !== "desc") params.set("order", state.order);
  if (state.page > 1) params.set("page", String(state.page));
  const query = params.toString();
  return `#/results${query ? `?${query}` : ""}`;
}

const seconds = (local) => (local ? String(new Date(local).getTime() / 1000) : "");

/** The API's query string for a search (without page fields). */
function apiQuery(filters) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (!value) continue;
    if (LISTS.has(name)) {
      for (const part of value.split(",").map((p) => p.trim()).filter(Boolean)) params.append(name, part);
    } else if (name === "since" || name === "until") {
      params.set(name, seconds(value));
    } else params.set(name, value);
  }
  return params;
}

function form(state) {
  const f = state.filters;
  const input = (name, label, type = "text", hint = "") =>
    `<label>${label}<input name="${name}" type="${type}" value="${escape(f[name] || "")}" placeholder="${escape(hint)}"></label>`;
  const statuses = ["", "success", "failure", "cancelled"].map((s) =>
    `<option value="${s}" ${f.status === s ? "selected" : ""}>${s || "any"}</option>`).join("");
  return `<form id="search" class="filters" role="search">
    ${input("text", "Text", "search", "words in parameters, results, errors")}
    ${input("pipeline", "Pipelines", "text", "a, b")}
    <label>Status<select name="status">${statuses}</select></label>
    ${input("tag", "Tags", "text", "x, y")}
    ${input("event", "Events", "text", "123, 456")}
    ${input("site", "Site")}
    ${input("user", "User")}
    ${input("since", "Created from", "datetime-local")}
    ${input("until", "Created before", "datetime-local")}
    <div class="actions"><button type="submit">Search</button>
      <a href="#/results">Clear</a></div>
  </form>`;
}

function header(state) {
  return COLUMNS.map(([label, field, sortable]) => {
    if (!sortable) return `<th scope="col" data-col="${label}">${label}</th>`;
    const active = state.sort === field;
    const order = active && state.order === "desc" ? "asc" : "desc";
    const sortState = active ? (state.order === "asc" ? "ascending" : "descending") : "none";
    const next = toHash({ ...state, sort: field, order, page: 1 });
    return `<th scope="col" aria-sort="${sortState}"><a href="${next}" data-sort="${field}">${label}${active ? (state.order === "asc" ? " ▲" : " ▼") : ""}</a></th>`;
  }).join("");
}

/** A link to another work, named by the end of its id (the whole id in its title). */
function mark(label, id, kind) {
  return `<a class="mark ${kind}" data-${kind}="${escape(id)}" href="#/work/${encodeURIComponent(id)}"
    title="${label} ${escape(id)}">${label} …${escape(id.slice(-6))}</a>`;
}

function row(doc) {
  const error = doc.status === "success" ? null : lastError(doc);
  const full = error ? `${error.type || "error"}: ${error.message || ""}` : "";
  const as = linked(doc, "retried-as", "as"), of = linked(doc, "retry-of", "of");
  return `<tr data-id="${escape(doc.id)}">
    <td class="mono id"><a href="#/work/${encodeURIComponent(doc.id)}" title="${escape(doc.id)}">${escape(doc.id)}</a></td><td>${escape(doc.pipeline)}</td>
    <td class="status-cell"><span class="status ${escape(doc.status)}">${escape(doc.status)}</span>${as ? ` ${mark("retried as", as, "retried-as")}` : ""}${
      of ? ` ${mark("retry of", of, "retry-of")}` : ""}${error ? `<div class="error-line" title="${escape(full)}">
      ${errorLine(error, 60)}</div>` : ""}</td>
    <td class="error" title="${escape(full)}">${error ? errorLine(error, 90) : ""}</td>
    <td>${escape(doc.user)}</td><td>${escape(doc.site)}</td>
    <td>${(doc.tags || []).map((t) => `<span class="tag">${escape(t)}</span>`).join(" ")}</td>
    <td>${when(doc.creation)}</td><td>${when(doc.stop)}</td>
    <td>${duration(doc.start, doc.stop)}</td><td>${attempts(doc).length}</td></tr>`;
}

async function download(filters, format, button) {
  const params = apiQuery(filters);
  params.set("format", format);
  button.disabled = true;
  try {
    const url = URL.createObjectURL(await blob(`/results/export?${params}`));
    const link = Object.assign(document.createElement("a"), { href: url, download: `results.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
  } catch (error) {
    alert(`The export failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

/** Show the results page for the search in the URL. */
export async function show(main, signal, status) {
  const state = fromHash(location.hash);
  main.innerHTML = `<h1>Results</h1>${form(state)}
    <div class="export"><button type="button" data-export="csv">Export CSV</button>
    <button type="button" data-export="json">Export JSON</button>
    <span class="caption">every work this search matches, newest first</span>
    <button type="button" data-bulk="retry" hidden>Retry every matching work…</button>
    <span class="caption" role="status" id="bulk-state"></span></div>
    <div id="table"><p class="caption">Searching…</p></div>`;
  main.querySelector("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    const filters = {};
    for (const name of FIELDS) if (data.get(name)) filters[name] = String(data.get(name)).trim();
    location.hash = toHash({ ...state, filters, page: 1 });
  });
  const retry = main.querySelector('[data-bulk="retry"]');
  me().then((who) => { retry.hidden = !mayAct(who); }, () => {});
  retry.addEventListener("click", () => {
    const say = reporter(main.querySelector("#bulk-state"));
    bulk("Retry", (confirm) => api(`/results/retry?${apiQuery(state.filters)}`,
      { method: "POST", headers: userHeaders(), body: { confirm } }), say);
  });
  for (const button of main.querySelectorAll("[data-export]"))
    button.addEventListener("click", () => download(state.filters, button.dataset.export, button));

  const params = apiQuery(state.filters);
  params.set("sort", state.sort);
  params.set("order", state.order);
  params.set("skip", String((state.page - 1) * PAGE));
  params.set("limit", String(PAGE));
  let page;
  try {
    page = await api(`/results/works?${params}`, { signal });
    status.live();
  } catch (error) {
    if (signal.aborted) return;
    if (error.status === 401) { status.lost(error); return; }
    main.querySelector("#table").innerHTML = `<div class="empty error">The search failed: ${escape(error.message)}</div>`;
    return;
  }
  const table = main.querySelector("#table");
  if (!page.total) {
    table.innerHTML = `<div class="empty">No finished work matches this search.
      ${Object.keys(state.filters).length ? '<a href="#/results">Clear the filters</a>.' : ""}</div>`;
    return;
  }
  table.innerHTML = `<div class="scroll"><table class="results"><thead><tr>${header(state)}</tr></thead>
    <tbody>${page.items.map(row).join("")}</tbody></table></div>${pager(state.page, PAGE, page.total,
      (to) => toHash({ ...state, page: to }), "Pages of results")}`;
}

// Small formatting helpers shared by the pages.

export function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function number(n) {
  return Number(n || 0).toLocaleString("en-US");
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return "—";
  return `${(100 * fraction).toFixed(fraction < 0.1 ? 1 : 0)} %`;
}

/** A unix time as local "2026-11-23 05:20:31". */
export function when(unix) {
  if (!unix) return "—";
  const d = new Date(unix * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The time between two unix times: "0.4 s", "12 s", "3 min". */
export function duration(start, stop) {
  if (!start || !stop) return "—";
  const s = stop - start;
  if (s < 10) return `${s.toFixed(1)} s`;
  return age(s);
}

/** The page links under a table: "first–last of total", previous and next, each page's
 * URL made by `hashOf(page)`. */
export function pager(page, size, total, hashOf, label) {
  const pages = Math.max(1, Math.ceil(total / size));
  const first = total ? (page - 1) * size + 1 : 0;
  const last = Math.min(total, page * size);
  const link = (to, text) => to >= 1 && to <= pages && to !== page
    ? `<a href="${hashOf(to)}">${text}</a>` : `<span aria-disabled="true">${text}</span>`;
  return `<nav class="pager" aria-label="${label}">
    <span id="shown">${number(first)}–${number(last)} of ${number(total)}</span>
    ${link(page - 1, "← Previous")} <span>page ${number(page)} of ${number(pages)}</span>
    ${link(page + 1, "Next →")}</nav>`;
}

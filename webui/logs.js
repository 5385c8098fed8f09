// A work's log, attempt by attempt: what the server keeps of it (its last bytes), and
// while the attempt runs, what it writes, asked for every second and added at the end.
// The view follows the end while the reader is at it; scrolled up, it stays put. The
// whole log, once the attempt ended, is a file of the archive, opened by a signed link.

import { api, signed } from "./api.js";
import { escape } from "./format.js";

/** Seconds between two looks at a running attempt's log. */
const EVERY = 1000;
/** Characters kept on the page; older ones are dropped as new ones come. */
const KEPT = 2_000_000;
const bytes = (n) => (n < 1024 ? `${n} bytes` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB`
  : `${(n / (1 << 20)).toFixed(1)} MiB`);

/** The log section of a work page, or "" for a work that never ran. */
export function logSection(doc) {
  if (!doc.attempt) return "";
  return `<section class="log-section"><h2>Log</h2>
    <div class="log-bar"><label>attempt <select class="log-attempt" aria-label="Attempt whose log is shown">
      ${Array.from({ length: doc.attempt }, (_, n) => doc.attempt - n)
        .map((n) => `<option value="${n}">${n}</option>`).join("")}</select></label>
      <span class="log-state caption" role="status">loading…</span>
      <span class="log-file caption"></span></div>
    <pre class="log" tabindex="0" aria-label="The attempt's log"></pre></section>`;
}

/** Fill the log section of `main` and keep it live while its attempt runs. */
export function followLog(main, doc, signal) {
  const section = main.querySelector(".log-section");
  if (!section) return;
  const select = section.querySelector(".log-attempt");
  let showing = 0;
  const load = () => {
    const mine = ++showing;
    show(section, doc.id, Number(select.value), signal, () => mine === showing && !signal.aborted);
  };
  select.addEventListener("change", load);
  load();
}

async function show(section, id, attempt, signal, current) {
  const pre = section.querySelector("pre.log"), state = section.querySelector(".log-state");
  pre.textContent = "";
  section.querySelector(".log-file").textContent = "";
  let written = null;
  while (current()) {
    let log;
    try {
      const after = written === null ? "" : `&after=${written}`;
      log = await api(`/buckets/work/${encodeURIComponent(id)}/logs?attempt=${attempt}${after}`, { signal });
    } catch (error) {
      if (!current()) return;
      state.textContent = `cannot load the log: ${error.message}; trying again`;
      await new Promise((done) => setTimeout(done, 5 * EVERY));
      continue;
    }
    if (!current()) return;
    append(pre, log.text);
    written = log.written;
    state.textContent = describe(log, pre);
    if (!log.running) {
      if (log.file) fileLink(section.querySelector(".log-file"), log.file, signal);
      return;
    }
    await new Promise((done) => setTimeout(done, EVERY));
  }
}

function describe(log, pre) {
  const kept = pre.textContent.length;
  const parts = [log.running ? "running: new lines appear as they are written" : "ended"];
  if (!log.size) parts.push(log.running ? "nothing written yet" : "it wrote nothing");
  else parts.push(`${bytes(log.size)} written${log.size > kept ? `, the last ${bytes(kept)} shown` : ""}`);
  if (log.skipped) parts.push(`${bytes(log.skipped)} never reached the server (marked in the text)`);
  return parts.join("; ");
}

/** Add `text` at the end of `pre`, following the end if the reader was at it. */
function append(pre, text) {
  if (!text) return;
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
  pre.append(document.createTextNode(text));
  if (pre.textContent.length > KEPT) pre.textContent = pre.textContent.slice(-KEPT);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

async function fileLink(where, path, signal) {
  where.innerHTML = `the whole log: <span class="mono">${escape(path)}</span> <span class="file-state">…</span>`;
  const state = where.querySelector(".file-state");
  try {
    const link = await signed(path, signal);
    state.replaceWith(Object.assign(document.createElement("a"), {
      href: link.url, target: "_blank", rel: "noopener noreferrer", textContent: "open" }));
  } catch (error) {
    if (!signal.aborted) state.textContent = `(not shown: ${error.message})`;
  }
}

// Talking to the server: JSON calls and the server-sent event stream, with the access
// token (when the server needs one) kept in this browser's localStorage.

const TOKEN_KEY = "workflow.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** The access token this browser uses, or null. */
export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

async function failure(reply) {
  let body = null;
  try { body = await reply.json(); } catch { /* not JSON: the status says enough */ }
  return new ApiError(reply.status, body);
}

/** GET (or another method with a JSON body) and the decoded JSON reply. */
export async function api(path, { method = "GET", body, signal, headers: extra = {} } = {}) {
  const init = { method, signal, headers: headers(body === undefined ? extra : { ...extra, "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const reply = await fetch(path, init);
  if (!reply.ok) throw await failure(reply);
  return reply.status === 204 ? null : reply.json();
}

/** A short-lived link the server signed for one archive file: an <img> or a new tab
 * follows it without the token. Never a blob: URL, which would have this page's origin
 * and drop the sandbox /files puts around user files: an SVG or HTML file opened from
 * one would run as the UI, token and all. */
export function signed(path, signal) {
  return api(`/files/link?path=${encodeURIComponent(path)}`, { signal });
}

/** A file or export as a Blob (with the token, which a plain link cannot carry). */
export async function blob(path, { signal } = {}) {
  const reply = await fetch(path, { headers: headers({}), signal });
  if (!reply.ok) throw await failure(reply);
  return reply.blob();
}

/** The events of a server-sent event stream, as {event, data} with data decoded. It is
 * read with fetch, not EventSource, so that it carries the token like every call. */
export async function* events(path, signal) {
  const reply = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!reply.ok) throw await failure(reply);
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

/** Call `load()` every `ms` until `signal` aborts, telling `status` whether the server
 * answers; a 401 stops it (the token form asks for a token, and the page starts again). */
export async function refreshing(load, signal, status, ms) {
  while (!signal.aborted) {
    try {
      await load();
      status.live();
    } catch (error) {
      if (signal.aborted) return;
      status.lost(error);
      if (error.status === 401) return;
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

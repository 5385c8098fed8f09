// A work's notifications on its page: whom its notify tells of what, and each message
// sent (delivered, given up on after N tries, or waiting for its next try), from
// GET /notifications?work=ID, looked at again every 2 s while one waits; and the
// history's delivery entries in the timeline.

import { api } from "./api.js";
import { escape, when } from "./format.js";

const FINISHED = ["success", "failure"];

function slackAsked(slack) {
  return Boolean(slack && (slack.channel_id || (slack.member_ids || []).length || slack.message || slack.blocks));
}

/** Whom the work's notify tells of what, in words ("" when nobody). */
function asked(doc) {
  const notify = doc.notify || {};
  const parts = [];
  if (slackAsked(notify.slack))
    parts.push(`Slack${notify.slack.channel_id ? ` (${notify.slack.channel_id})` : ""} of ${(notify.on || FINISHED).join(", ")}`);
  for (const send of notify.to || []) parts.push(`${send.target} of ${(send.on || FINISHED).join(", ")}`);
  return parts.join("; ");
}

/** The section, if the work asks for notifications or has had some. */
export function noticesSection(doc) {
  const told = (doc.history || []).some((e) => e.kind === "delivery");
  const wants = asked(doc);
  if (!wants && !told) return "";
  return `<section data-section="notices"><h2>Notifications</h2>
    ${wants ? `<p class="caption">It tells ${escape(wants)}.</p>` : ""}
    <div data-notices><p class="caption">Loading…</p></div></section>`;
}

function state(message) {
  if (message.outcome === "delivered") return '<span class="status success">delivered</span>';
  if (message.outcome === "failed") return '<span class="status failure">given up</span>';
  if (message.state === "sending") return '<span class="status running">sending</span>';
  if (message.tries) return `<span class="status waiting">waiting</span> <span class="caption">next try ${when(message.due)}</span>`;
  return '<span class="status queued">to send</span>';
}

function table(messages) {
  if (!messages.length) return '<p class="caption">Nothing sent yet.</p>';
  // Why a try failed goes under the state: on a phone it stays in view.
  const rows = messages.map((m) => `<tr data-notice="${escape(m.key)}">
    <td>${escape(m.event)}</td><td>${escape(m.target)}</td>
    <td class="detail">${state(m)}${m.detail ? `<div class="refused">${escape(m.detail)}</div>` : ""}</td>
    <td class="num">${m.tries}</td><td>${when(m.settled || m.created)}</td></tr>`).join("");
  return `<div class="scroll"><table class="results notices"><thead><tr><th>event</th><th>target</th>
    <th>state, and why a try failed</th><th>tries</th><th>when</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** Fill the section, and again every 2 s while a message waits, until `signal` aborts. */
export async function followNotices(main, doc, signal) {
  const box = main.querySelector("[data-notices]");
  while (box && !signal.aborted) {
    let messages;
    try {
      messages = await api(`/notifications?${new URLSearchParams({ work: doc.id })}`, { signal });
    } catch (error) {
      if (!signal.aborted) box.innerHTML = `<p class="caption">Cannot load them: ${escape(error.message)}</p>`;
      return;
    }
    box.innerHTML = table(messages);
    const waiting = messages.some((m) => !m.outcome) || ["queued", "running"].includes(doc.status);
    if (!waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** A delivery entry of the history, for the timeline. */
export function deliveryEntry(item) {
  const tries = `${item.tries} ${item.tries === 1 ? "try" : "tries"}`;
  const how = item.outcome === "delivered"
    ? `delivered (${tries})` : `given up after ${tries}${item.detail ? `: ${escape(item.detail)}` : ""}`;
  return `<li class="delivery ${escape(item.outcome)}"><span class="when">${when(item.at)}</span>
    told <strong>${escape(item.target)}</strong> of ${escape(item.event)}${item.attempt ? ` (attempt ${item.attempt})` : ""}:
    <span class="${item.outcome === "delivered" ? "" : "error"}">${how}</span>
    <div class="caption mono">key ${escape(item.key)}</div></li>`;
}

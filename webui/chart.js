// The dashboard's chart of works finished (and failed) per minute over the last hour,
// with a scale: works per minute up the side, minutes ago along the bottom. The labels
// are HTML beside the SVG, so that they stay readable however wide the card is.

import { escape } from "./format.js";

/** The smallest of 1, 2, 5, 10, 20, 50, ... at or above `n` (at least 1). */
export function niceTop(n) {
  let step = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * step >= n) return m * step;
    step *= 10;
  }
}

/** The chart for `perMinute` ({finished, failed}: counts per minute, the last one now). */
export function chart(perMinute) {
  const { finished, failed } = perMinute;
  const most = Math.max(0, ...finished);
  const top = niceTop(most);
  const width = 240, height = 80, step = width / finished.length;
  const y = (n) => height - (n / top) * height;
  const bars = finished.map((n, i) => {
    if (!n) return "";
    const x = (i * step).toFixed(1), w = Math.max(1, step - 1).toFixed(1);
    const h = Math.max(1, height - y(n));
    const bad = failed[i] ? Math.max(1, height - y(failed[i])) : 0;
    return `<rect class="done" x="${x}" y="${(height - h).toFixed(1)}" width="${w}" height="${h.toFixed(1)}"/>` +
      (bad ? `<rect class="failed" x="${x}" y="${(height - bad).toFixed(1)}" width="${w}" height="${bad.toFixed(1)}"/>` : "");
  }).join("");
  const grid = [0, 0.5, 1].map((f) =>
    `<line class="${f ? "grid" : "axis"}" x1="0" x2="${width}" y1="${(y(f * top) + (f ? 0.5 : -0.5)).toFixed(1)}" y2="${(y(f * top) + (f ? 0.5 : -0.5)).toFixed(1)}"/>`).join("");
  const total = finished.reduce((a, b) => a + b, 0);
  const bad = failed.reduce((a, b) => a + b, 0);
  const label = `Works finished per minute over the last hour: ${total} in all, ${bad} failed; busiest minute ${most}.`;
  const half = top / 2;
  return `<figure class="chart-box">
    <div class="y-scale" aria-hidden="true"><span data-scale="top">${top}</span><span>${Number.isInteger(half) ? half : ""}</span><span>0</span></div>
    <svg class="chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="${escape(label)}">
      <title>${escape(label)}</title>${grid}${bars}</svg>
    <div class="x-scale" aria-hidden="true"><span>60 min ago</span><span>30</span><span>now</span></div>
    <figcaption class="caption">works finished per minute, <span class="key-failed">failed in red</span></figcaption>
  </figure>`;
}

// The equity curve with trade markers, and the drawdown underneath, drawn with uPlot (vendored).

import uPlot from "./vendor/uPlot.esm.js";
import { fmtNum, fmtPct, h } from "./dom.js";

const seconds = (iso) => Date.parse(iso) / 1000;
const COLORS = { equity: "#2563eb", drawdown: "#dc2626", entry: "#7c3aed", win: "#16a34a", loss: "#dc2626" };

/** x (unix seconds), equity and drawdown (a fraction ≤ 0 below the running peak). */
export function curves(equity) {
  const xs = equity.map((p) => seconds(p.timestamp));
  const ys = equity.map((p) => p.equity);
  let peak = -Infinity;
  const dd = ys.map((y) => {
    peak = Math.max(peak, y);
    return peak > 0 ? y / peak - 1 : 0;
  });
  return { xs, ys, dd };
}

/** The equity at time t, read off the curve by linear interpolation. */
function equityAt(xs, ys, t) {
  let lo = 0;
  let hi = xs.length - 1;
  if (t <= xs[0]) return ys[0];
  if (t >= xs[hi]) return ys[hi];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= t) lo = mid;
    else hi = mid;
  }
  return ys[lo] + ((ys[hi] - ys[lo]) * (t - xs[lo])) / (xs[hi] - xs[lo]);
}

/** One marker per round trip's entry and exit: {t, y, kind} with kind entry | win | loss. */
export function markers(xs, ys, trips) {
  const out = [];
  for (const trip of trips) {
    const entry = seconds(trip.entry_time);
    out.push({ t: entry, y: equityAt(xs, ys, entry), kind: "entry" });
    if (trip.exit_time) {
      const exit = seconds(trip.exit_time);
      out.push({ t: exit, y: equityAt(xs, ys, exit), kind: trip.pnl >= 0 ? "win" : "loss" });
    }
  }
  return out;
}

function drawMarkers(u, marks) {
  const { ctx } = u;
  const { min, max } = u.scales.x;
  const r = 4 * devicePixelRatio;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  ctx.clip();
  for (const m of marks) {
    if (m.t < min || m.t > max) continue;
    const x = u.valToPos(m.t, "x", true);
    const y = u.valToPos(m.y, "y", true);
    const up = m.kind === "entry";
    ctx.fillStyle = COLORS[m.kind];
    ctx.beginPath();
    ctx.moveTo(x, up ? y - r : y + r);
    ctx.lineTo(x - r, up ? y + r : y - r);
    ctx.lineTo(x + r, up ? y + r : y - r);
    ctx.fill();
  }
  ctx.restore();
}

function options(width, height, series, extra) {
  return {
    width, height, series,
    cursor: { sync: { key: "barstream-run" } },
    legend: { live: true },
    ...extra,
  };
}

/** Draw both charts into `el`; returns {destroy}. */
export function equityCharts(el, equity, trips) {
  const { xs, ys, dd } = curves(equity);
  const marks = markers(xs, ys, trips);
  const width = Math.max(320, el.clientWidth - 16);
  const top = h("div", { class: "chart", id: "equity-chart" });
  const bottom = h("div", { class: "chart", id: "drawdown-chart" });
  const key = h("p", { class: "chart-key" },
    h("span", { class: "mark entry" }, "▲ entry"), h("span", { class: "mark win" }, "▼ winning exit"),
    h("span", { class: "mark loss" }, "▼ losing exit"), ` ${marks.length} markers · drag to zoom, double-click to reset`);
  el.replaceChildren(top, bottom, key);
  const charts = [];
  const zoomBoth = (u, scale) => {
    if (scale !== "x") return;
    for (const other of charts) {
      const { min, max } = u.scales.x;
      if (other !== u && (other.scales.x.min !== min || other.scales.x.max !== max)) other.setScale("x", { min, max });
    }
  };
  charts.push(new uPlot(options(width, 260, [
    {},
    { label: "equity", stroke: COLORS.equity, width: 1.5, value: (u, v) => fmtNum(v) },
  ], { hooks: { draw: [(u) => drawMarkers(u, marks)], setScale: [zoomBoth] },
    axes: [{}, { size: 70, values: (u, vals) => vals.map(fmtNum) }] }), [xs, ys], top));
  charts.push(new uPlot(options(width, 130, [
    {},
    { label: "drawdown", stroke: COLORS.drawdown, fill: "rgba(220, 38, 38, 0.15)", width: 1, value: (u, v) => fmtPct(v) },
  ], { hooks: { setScale: [zoomBoth] }, scales: { y: { range: (u, lo) => [Math.min(lo, -0.01), 0] } },
    axes: [{}, { size: 70, values: (u, vals) => vals.map(fmtPct) }] }), [xs, dd], bottom));
  el.dataset.markers = marks.length;
  el.dataset.points = xs.length;
  const resize = () => charts.forEach((c) => c.setSize({ width: Math.max(320, el.clientWidth - 16), height: c.height }));
  addEventListener("resize", resize);
  return { destroy() { removeEventListener("resize", resize); charts.forEach((c) => c.destroy()); } };
}

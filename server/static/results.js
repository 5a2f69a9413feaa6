// A completed run's results: the metrics table, the charts and a paged table of round trips
// (pages past the first read from the server as the table reaches them).

import { equityCharts } from "./chart.js";
import { fill, fmtNum, fmtPct, fmtTime, h } from "./dom.js";

// Metrics that are fractions, shown as percentages; every other one as a number.
const FRACTIONS = new Set([
  "total_return", "buy_and_hold_return", "benchmark_return", "cagr", "irr_annualized",
  "volatility_annualized", "max_drawdown", "avg_drawdown", "win_rate", "exposure",
  "best_trade_pct", "worst_trade_pct", "avg_trade_pct", "expectancy_pct", "kelly_criterion",
]);
const PAGE = 25;

/** The metrics table: every metric the run reported, by name. */
export function metricsTable(metrics) {
  const names = Object.keys(metrics).sort();
  return h("table", { class: "metrics", id: "metrics" },
    h("tbody", {}, names.map((name) => h("tr", {},
      h("th", {}, name),
      h("td", {}, FRACTIONS.has(name) ? fmtPct(metrics[name]) : fmtNum(metrics[name]))))));
}

function tripRow(trip, index) {
  const cls = trip.pnl >= 0 ? "win" : "loss";
  return h("tr", {},
    h("td", {}, index + 1), h("td", {}, trip.symbol), h("td", {}, trip.side),
    h("td", {}, fmtTime(trip.entry_time)), h("td", { class: "num" }, fmtNum(trip.entry_price)),
    h("td", {}, fmtTime(trip.exit_time)), h("td", { class: "num" }, fmtNum(trip.exit_price)),
    h("td", { class: "num" }, fmtNum(trip.quantity)),
    h("td", { class: `num ${cls}` }, fmtNum(trip.pnl)),
    h("td", { class: `num ${cls}` }, fmtPct(trip.return)),
    h("td", { class: "num" }, fmtNum(trip.r_multiple)), h("td", {}, trip.exit_reason));
}

const HEAD = ["#", "symbol", "side", "entry", "entry price", "exit", "exit price", "quantity", "pnl", "return", "R", "exit reason"];

/** The round trips, PAGE at a time, with previous/next. `more()` gives the rows after those
 * loaded (the server's next page, `[]` at the end), fetched only when a page needs them. */
export function tradesTable(trips, total = trips.length, more = async () => []) {
  const body = h("tbody");
  const label = h("span", { class: "page-label" });
  const prev = h("button", { type: "button", class: "secondary", onclick: () => show(page - 1) }, "← Previous");
  const next = h("button", { type: "button", class: "secondary", onclick: () => show(page + 1) }, "Next →");
  const pages = Math.max(1, Math.ceil(total / PAGE));
  let page = 0;
  async function show(n) {
    page = Math.min(Math.max(n, 0), pages - 1);
    const start = page * PAGE;
    while (trips.length < Math.min(start + PAGE, total)) {
      const rows = await more();
      if (!rows.length) break;
      trips.push(...rows);
    }
    fill(body, trips.slice(start, start + PAGE).map((t, i) => tripRow(t, start + i)));
    label.textContent = total
      ? `trades ${start + 1}–${Math.min(start + PAGE, total)} of ${total} · page ${page + 1} of ${pages}`
      : "no closed trades";
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  show(0);
  return h("div", { id: "trades" },
    h("table", { class: "trades" }, h("thead", {}, h("tr", {}, HEAD.map((c) => h("th", {}, c)))), body),
    h("div", { class: "pager" }, prev, label, next));
}

/** Fill `el` with the results; returns {destroy} for the charts. The results carry the first
 * page of round trips (the charts mark those); `fetchPage(url)` gives `{rows, next}` of a later
 * one, for the table. */
export function renderResults(el, results, fetchPage = null) {
  const paging = (results.paging || {}).round_trips;
  const trips = results.round_trips.slice();
  let url = paging ? paging.next : null;
  async function more() {
    if (!url || !fetchPage) return [];
    const got = await fetchPage(url);
    url = got.next;
    return got.rows;
  }
  const chartBox = h("div", { class: "charts" });
  const open = results.open_positions.length
    ? h("p", { class: "muted" }, `${results.open_positions.length} position(s) still open at the end (not in the trades).`)
    : null;
  fill(el,
    h("h2", {}, "Results"),
    h("div", { class: "results-grid" },
      h("section", {}, h("h3", {}, "Metrics"), metricsTable(results.metrics)),
      h("section", { class: "wide" }, h("h3", {}, "Equity and drawdown"), chartBox)),
    h("h3", {}, "Trades (round trips)"), open, tradesTable(trips, paging ? paging.total : trips.length, more));
  if (!results.equity.length) {
    chartBox.append(h("p", { class: "muted" }, "no equity points"));
    return { destroy() {} };
  }
  return equityCharts(chartBox, results.equity, results.round_trips);
}

// One run, followed live over the stream: progress, states, running metrics, logs; then results.

import { explain } from "./api.js";
import { badge, fill, fmtDuration, fmtNum, fmtPct, fmtTime, h, notice, progressBar } from "./dom.js";
import { renderResults } from "./results.js";
import { RunStream } from "./stream.js";

const LOG_LINES = 200;
const RUNNING = [
  ["equity", "equity", fmtNum], ["drawdown", "drawdown", fmtPct],
  ["max_drawdown", "max drawdown", fmtPct], ["trade_count", "trades", fmtNum],
];

/** What a test (or a curious person) can read: the ids applied, in order, and the link's story. */
function trace(runId) {
  window.__barstream = { run: runId, events: [], statuses: [], reconnects: 0, gaps: [] };
  return window.__barstream;
}

function describeRun(status) {
  const c = status.config || {};
  const what = c.template || (c.strategy && c.strategy.name) || "strategy";
  return `${(c.symbols || []).join(", ")} · ${c.interval || c.resolution || ""} · ${fmtTime(c.start)} → ${fmtTime(c.end)} · ${what}`;
}

export function runView(api, runId) {
  const seen = trace(runId);
  const title = h("h1", {}, "Run");
  const stateBox = h("span", { id: "state" });
  const bar = progressBar("run progress");
  const phase = h("span", { id: "phase" }, "waiting");
  const conn = h("div", { id: "connection", class: "connection" }, "connecting…");
  const timeline = h("ol", { id: "timeline", class: "timeline" });
  const tiles = Object.fromEntries(RUNNING.map(([name]) => [name, h("strong", { dataset: { metric: name } }, "—")]));
  const logs = h("pre", { id: "logs", class: "logs" });
  const messages = h("div", { class: "messages" });
  const results = h("div", { id: "results" });
  const cancel = h("button", { type: "button", id: "cancel", class: "danger", disabled: true, onclick: () => act("cancel") }, "Cancel run");
  const archive = h("button", { type: "button", id: "archive", class: "secondary", onclick: () => act(status.archived ? "unarchive" : "archive") }, "Archive");
  const root = h("main", { class: "run", dataset: { runId } },
    h("p", {}, h("a", { href: "#/runs" }, "← all runs")),
    h("header", { class: "run-head" }, title, stateBox, h("span", { class: "spacer" }), cancel, archive),
    h("p", { class: "muted", id: "run-config" }), messages,
    h("section", { class: "live" },
      h("div", { class: "progress-line" }, bar, phase), conn,
      h("div", { class: "tiles" }, RUNNING.map(([name, label, _]) => h("div", { class: "tile" }, h("span", {}, label), tiles[name]))),
      h("div", { class: "columns" },
        h("section", {}, h("h3", {}, "States"), timeline),
        h("section", { class: "wide" }, h("h3", {}, "Log"), logs))),
    results);
  let status = { archived: false, state: "queued" };
  let progress = 0;
  let charts = null;
  const logLines = [];
  let alive = true;

  function show(next) {
    status = next;
    title.textContent = status.config?.name || `Run ${runId.slice(0, 8)}`;
    fill(stateBox, badge(status.state), status.archived ? h("span", { class: "badge archived" }, "archived") : null);
    root.dataset.state = status.state;
    root.dataset.archived = status.archived;
    root.querySelector("#run-config").textContent = `${runId} · ${describeRun(status)}`;
    cancel.disabled = !["queued", "running"].includes(status.state);
    archive.textContent = status.archived ? "Unarchive" : "Archive";
  }

  async function act(action) {
    try {
      const answer = await api.act(runId, action);
      if (action !== "cancel") show(answer);
    } catch (err) {
      messages.append(notice("error", explain(err)));
    }
  }

  function tile(name, value) {
    tiles[name].textContent = RUNNING.find(([n]) => n === name)[2](value);
  }

  function apply(event) {
    seen.events.push(event.id);
    const { data } = event;
    if (event.type === "progress") {
      progress = Math.max(progress, data.progress);
      bar.set(progress);
      phase.textContent = `${fmtPct(progress).replace(".00", "")} · ${data.phase || ""}${data.eta_seconds != null && progress < 1 ? ` · ETA ${fmtDuration(data.eta_seconds)}` : ""}`;
    } else if (event.type === "state") {
      timeline.append(h("li", {}, badge(data.state), ` ${fmtTime(event.timestamp)}`, data.error ? ` — ${data.error.code}: ${data.error.message}` : ""));
      show({ ...status, state: data.state });
      if (["completed", "failed", "cancelled"].includes(data.state)) finished(data);
    } else if (event.type === "metric" && tiles[data.name]) {
      tile(data.name, data.value); // running figures, then the final ones of the same names
    } else if (event.type === "log") {
      logLines.push(`${fmtTime(event.timestamp)}  ${data.level.padEnd(7)} ${data.message}`);
      logLines.splice(0, logLines.length - LOG_LINES);
      logs.textContent = logLines.join("\n");
      logs.scrollTop = logs.scrollHeight;
    }
  }

  async function finished(data) {
    if (data.state === "failed" && data.error) messages.append(notice("error", `failed — ${data.error.code}: ${data.error.message}`));
    if (data.state === "cancelled") messages.append(notice("info", "the run was cancelled"));
    try {
      show(await api.run(runId));
      if (data.state !== "completed") return;
      const answer = await api.results(runId);
      if (!alive) return; // the page moved on meanwhile
      charts = renderResults(results, answer, (url) => api.listing(url));
      const last = answer.equity[answer.equity.length - 1];
      if (!last) return;
      const peak = answer.equity.reduce((top, p) => Math.max(top, p.equity), -Infinity);
      tile("equity", last.equity); // at the end, not the last running sample
      tile("drawdown", 1 - last.equity / peak);
    } catch (err) {
      messages.append(notice("error", explain(err)));
    }
  }

  function onStatus(kind, detail) {
    seen.statuses.push(kind);
    conn.dataset.status = kind;
    if (kind === "live") conn.textContent = "live";
    if (kind === "reconnecting") {
      seen.reconnects += 1;
      conn.textContent = `connection lost — reconnecting… (attempt ${detail.attempt}, in ${fmtDuration(detail.delay / 1000)})`;
    }
    if (kind === "resumed") conn.textContent = `reconnected — resumed after event ${detail.from} (reconnected ${detail.reconnects}×)`;
    if (kind === "gap") {
      seen.gaps.push(detail);
      messages.append(notice("error", `gap in the stream: expected event ${detail.expected}, got ${detail.got}; resyncing`));
    }
    if (kind === "finished") conn.textContent = `stream ended after event ${detail.lastId}${seen.reconnects ? ` (reconnected ${seen.reconnects}×, no event missed)` : ""}`;
    if (kind === "refused") conn.textContent = `refused: ${detail.reason || "invalid API key or backtest not found"}`;
  }

  const stream = new RunStream(runId, api.key, { onEvent: apply, onStatus });
  api.run(runId).then((s) => { show(s); stream.start(); })
    .catch((err) => messages.append(notice("error", explain(err))));
  return { el: root, destroy() { alive = false; stream.stop(); if (charts) charts.destroy(); } };
}

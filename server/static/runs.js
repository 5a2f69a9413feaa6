// The run list: state filter, archived toggle, cursor paging; refreshed while runs are active.

import { explain } from "./api.js";
import { badge, fill, fmtTime, h, notice, progressBar } from "./dom.js";

const STATES = ["", "queued", "running", "completed", "failed", "cancelled"];
const REFRESH_MS = 2000;

function row(run) {
  const c = run.config || {};
  const bar = progressBar(`progress of ${run.run_id}`);
  bar.set(run.progress);
  const open = () => { location.hash = `#/run/${run.run_id}`; };
  return h("tr", { class: "link", dataset: { runId: run.run_id, state: run.state }, onclick: open },
    h("td", {}, h("a", { href: `#/run/${run.run_id}` }, c.name || run.run_id.slice(0, 8)),
      run.archived ? h("span", { class: "badge archived" }, "archived") : null),
    h("td", {}, (c.symbols || []).join(", ")), h("td", {}, c.interval || ""),
    h("td", {}, badge(run.state)), h("td", {}, bar), h("td", {}, fmtTime(run.created_at)));
}

/** `query`: the hash's query (state, archived, limit), so a filtered list has its own address. */
export function runList(api, query) {
  const state = query.get("state") || "";
  const archived = query.get("archived") === "1";
  const limit = Number(query.get("limit")) || 20;
  const cursors = [null]; // the cursor of each page seen so far: "previous" walks back
  let timer = null;
  let page = 0;
  let stopped = false;

  const select = h("select", { id: "state-filter", value: state, onchange: () => go({ state: select.value }) },
    STATES.map((s) => h("option", { value: s }, s || "any state")));
  const toggle = h("input", { type: "checkbox", id: "archived-toggle", checked: archived, onchange: () => go({ archived: toggle.checked ? "1" : "" }) });
  const body = h("tbody");
  const label = h("span", { id: "page-label", class: "page-label" });
  const messages = h("div", { class: "messages" });
  const prev = h("button", { type: "button", class: "secondary", id: "prev-page", onclick: () => load(page - 1) }, "← Previous");
  const next = h("button", { type: "button", class: "secondary", id: "next-page", onclick: () => load(page + 1) }, "Next →");

  function go(change) {
    const q = new URLSearchParams({ state, archived: archived ? "1" : "", ...change });
    if (query.get("limit")) q.set("limit", String(limit));
    for (const [k, v] of [...q]) if (!v) q.delete(k);
    location.hash = `#/runs${q.size ? `?${q}` : ""}`;
  }

  async function load(n) {
    clearTimeout(timer);
    try {
      const { runs, total, next: cursor } = await api.runs({ state, archived, cursor: cursors[n], limit });
      if (stopped) return;
      page = n;
      cursors[n + 1] = cursor;
      fill(body, runs.length ? runs.map(row) : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "no runs")));
      const first = runs.length ? n * limit + 1 : 0;
      label.textContent = `runs ${first}–${n * limit + runs.length} of ${total}`;
      prev.disabled = n === 0;
      next.disabled = !cursor;
      fill(messages);
      if (runs.some((r) => r.state === "queued" || r.state === "running")) timer = setTimeout(() => load(page), REFRESH_MS);
    } catch (err) {
      if (stopped) return;
      fill(messages, notice("error", explain(err)));
      timer = setTimeout(() => load(page), REFRESH_MS * 2);
    }
  }

  load(0);
  const el = h("main", { class: "runs" },
    h("header", { class: "run-head" }, h("h1", {}, "Runs"), h("span", { class: "spacer" }),
      h("a", { class: "button", href: "#/new" }, "New run")),
    h("div", { class: "filters" },
      h("label", {}, "State ", select),
      h("label", {}, toggle, " show archived runs"),
      h("button", { type: "button", class: "secondary", onclick: () => load(page) }, "Refresh")),
    messages,
    h("table", { class: "runs-table", id: "runs" },
      h("thead", {}, h("tr", {}, ["name", "symbols", "resolution", "state", "progress", "created (UTC)"].map((c) => h("th", {}, c)))),
      body),
    h("div", { class: "pager" }, prev, label, next));
  return { el, destroy() { stopped = true; clearTimeout(timer); } };
}

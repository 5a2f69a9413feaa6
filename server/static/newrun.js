// The new-run form: symbols, dates, resolution, capital and fees, and the strategy picker.

import { ApiError, explain } from "./api.js";
import { fill, fmtNum, h, notice } from "./dom.js";
import { strategyPicker } from "./strategy.js";

const day = (iso) => iso.slice(0, 10);

/** Six months back from the data's end (or its start, if shorter). */
function defaultRange(symbol) {
  const end = new Date(symbol.last_bar);
  const start = new Date(end);
  start.setUTCMonth(start.getUTCMonth() - 6);
  return [day(start < new Date(symbol.first_bar) ? symbol.first_bar : start.toISOString()), day(end.toISOString())];
}

function errorNotice(err) {
  if (!(err instanceof ApiError)) return notice("error", err.message);
  const details = err.details.map((d) => h("li", {}, `${d.field || d.loc || ""}: ${d.message || d.msg || JSON.stringify(d)}`));
  return h("div", { class: "notice error", role: "alert", id: "form-error", dataset: { code: err.code, field: err.field || "" } },
    err.describe(), details.length ? h("ul", {}, details) : null);
}

export function newRun(api) {
  const messages = h("div", { class: "messages" });
  const el = h("main", { class: "new-run" }, h("h1", {}, "New run"), messages, h("p", { class: "muted" }, "loading the catalogs…"));
  let alive = true;
  Promise.all([api.get("/api/v2/symbols"), api.get("/api/v2/signals"), api.get("/api/v2/templates")])
    .then(([symbols, signals, templates]) => { if (alive) build(el, api, symbols.items, signals.items, templates.items); })
    .catch((err) => fill(messages, notice("error", explain(err))));
  return { el, destroy() { alive = false; } };
}

function build(el, api, symbols, signals, templates) {
  const preferred = symbols.find((s) => s.name === "ETH-USD") || symbols[0];
  const [start0, end0] = defaultRange(preferred);
  const symbolSelect = h("select", { id: "symbols", name: "symbols", multiple: true, size: Math.min(8, symbols.length), onchange: () => refresh() },
    symbols.map((s) => h("option", { value: s.name, selected: s === preferred }, s.aliases.length ? `${s.name} (${s.aliases.join(", ")})` : s.name)));
  const range = h("small", { class: "muted", id: "data-range" });
  const start = h("input", { type: "date", id: "start", value: start0, required: true });
  const end = h("input", { type: "date", id: "end", value: end0, required: true });
  const resolution = h("select", { id: "resolution", value: "1h" });
  const name = h("input", { id: "name", placeholder: "optional label", maxlength: 200 });
  const capital = h("input", { id: "capital", type: "number", value: 10000, min: 1, step: "any" });
  const fee = h("input", { id: "fee_bps", type: "number", value: 10, min: 0, max: 1000, step: "any" });
  const picker = strategyPicker(signals, templates, () => resolution.value);
  const preview = h("pre", { class: "json", id: "body-preview" });
  const messages = h("div", { class: "messages" });
  const submit = h("button", { type: "submit", id: "submit" }, "Start run");

  function chosen() { return [...symbolSelect.selectedOptions].map((o) => symbols.find((s) => s.name === o.value)); }
  function refresh() {
    const picked = chosen();
    const resolutions = picked.length ? picked.map((s) => s.resolutions).reduce((a, b) => a.filter((r) => b.includes(r))) : [];
    const keep = resolution.value;
    fill(resolution, resolutions.map((r) => h("option", { value: r }, r)));
    resolution.value = resolutions.includes(keep) ? keep : resolutions.includes("1h") ? "1h" : resolutions[0] || "";
    range.textContent = picked.map((s) => `${s.name}: ${day(s.first_bar)} → ${day(s.last_bar)}, ${fmtNum(s.bar_count)} ${s.base_resolution} bars${s.synthetic ? " (synthetic)" : ""}`).join(" · ");
  }
  function body() {
    const out = {
      symbols: chosen().map((s) => s.name), start: `${start.value}T00:00:00Z`, end: `${end.value}T00:00:00Z`,
      resolution: resolution.value, capital: Number(capital.value), execution: { fee_bps: Number(fee.value) },
      ...picker.value(),
    };
    if (name.value.trim()) out.name = name.value.trim();
    return out;
  }
  function showPreview() {
    try { preview.textContent = JSON.stringify(body(), null, 2); } catch (err) { preview.textContent = err.message; }
  }
  async function send(event) {
    event.preventDefault();
    fill(messages);
    submit.disabled = true;
    try {
      const created = await api.post("/api/v2/backtests", body());
      location.hash = `#/run/${created.run_id}`;
    } catch (err) {
      fill(messages, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  }
  refresh();
  const form = h("form", { id: "new-run", onsubmit: send, oninput: showPreview, onchange: showPreview },
    h("fieldset", {}, h("legend", {}, "Data"),
      h("label", {}, "Symbols ", symbolSelect), range,
      h("div", { class: "row" }, h("label", {}, "Start ", start), h("label", {}, "End ", end),
        h("label", {}, "Resolution ", resolution), h("small", { class: "muted" }, "dates are UTC; the end is exclusive"))),
    h("fieldset", {}, h("legend", {}, "Account"),
      h("div", { class: "row" }, h("label", {}, "Name ", name), h("label", {}, "Capital ", capital), h("label", {}, "Fee (bps) ", fee))),
    picker.el,
    h("div", { class: "row" }, submit,
      h("button", { type: "button", class: "secondary", id: "demo", onclick: () => { picker.demo(); showPreview(); } }, "Demo strategy")),
    messages,
    h("details", {}, h("summary", {}, "Request body"), preview));
  fill(el, h("h1", {}, "New run"), form);
  showPreview();
}

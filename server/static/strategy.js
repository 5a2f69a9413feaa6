// The strategy picker of the new-run form: catalog signals, a template, or a JSON object.

import { fill, h } from "./dom.js";

/** The demo strategy (seed 001's example): a MACD cross while the close is above its SMA(50). */
export const DEMO = {
  trigger: ["macd_bullish_cross", { window_fast: 12, window_slow: 26, window_sign: 9 }],
  filter: ["is_above_sma", { window: 50 }],
  exit: ["", {}],
};
const ROLES = { trigger: "TRIGGER", filter: "FILTER", exit: "EXIT" };

/** One param input from the catalog's description: {type, default, minimum, maximum}. */
function paramInput(name, spec, value) {
  const attrs = { name, type: "number", value: value ?? spec.default, title: spec.description || name };
  if (spec.type === "int") attrs.step = 1;
  else attrs.step = "any";
  if (spec.minimum != null) attrs.min = spec.minimum;
  if (spec.maximum != null) attrs.max = spec.maximum;
  return h("label", { class: "param" }, `${name} `, h("input", attrs));
}

/** A signal slot: pick a signal with this role, then its params. */
function signalSlot(slot, catalog) {
  const choices = catalog.filter((s) => s.roles.includes(ROLES[slot]));
  const params = h("span", { class: "params" });
  const select = h("select", { name: slot, id: `signal-${slot}`, onchange: () => showParams() },
    slot === "trigger" ? null : h("option", { value: "" }, "(none)"),
    choices.map((s) => h("option", { value: s.name, title: s.description }, s.name)));
  const help = h("small", { class: "muted" });
  function showParams(values = {}) {
    const spec = catalog.find((s) => s.name === select.value);
    help.textContent = spec ? spec.description : "";
    fill(params, spec ? Object.entries(spec.params).map(([n, p]) => paramInput(n, p, values[n])) : []);
  }
  function set([name, values]) {
    select.value = name;
    showParams(values);
  }
  function value(resolution) {
    if (!select.value) return null;
    const out = { name: select.value, timeframe: resolution, params: {} };
    if (slot !== "exit") out.signal_type = ROLES[slot];
    for (const input of params.querySelectorAll("input")) out.params[input.name] = Number(input.value);
    return out;
  }
  const el = h("div", { class: "slot" }, h("label", {}, `${slot} `, select), params, help);
  return { el, set, value };
}

/** The JSON types a schema admits, through nested anyOf: {"number", "string", "null"}. */
function types(spec) {
  if (spec.anyOf) return new Set(spec.anyOf.flatMap((s) => [...types(s)]));
  return new Set([].concat(spec.type || []).map((t) => (t === "integer" ? "number" : t)));
}

/** Inputs for a template's params, from its JSON Schema, filled with its example. */
function templateParams(template) {
  const props = template.params.properties || {};
  return Object.entries(props).map(([name, spec]) => {
    const start = (template.example || {})[name] ?? spec.default ?? "";
    const input = spec.enum
      ? h("select", { name, value: start }, spec.enum.map((v) => h("option", { value: v }, v)))
      : h("input", { name, value: start ?? "", type: spec.type === "integer" || spec.type === "number" ? "number" : "text", step: "any" });
    input.dataset.numeric = types(spec).has("number");
    return h("label", { class: "param", title: spec.description || name }, `${name} `, input);
  });
}

/** `resolutionOf()` gives the run's resolution: each signal's timeframe. */
export function strategyPicker(signals, templates, resolutionOf) {
  const slots = Object.fromEntries(Object.keys(ROLES).map((slot) => [slot, signalSlot(slot, signals)]));
  const tplParams = h("div", { class: "params", id: "template-params" });
  const tplSelect = h("select", { id: "template", onchange: () => showTemplate() },
    templates.map((t) => h("option", { value: t.name, title: t.description }, t.name)));
  const tplHelp = h("small", { class: "muted" });
  const json = h("textarea", { id: "strategy-json", rows: 14, spellcheck: "false" });
  const panes = {
    signals: h("div", { class: "pane" }, Object.values(slots).map((s) => s.el)),
    template: h("div", { class: "pane" }, h("label", {}, "template ", tplSelect), tplHelp, tplParams),
    json: h("div", { class: "pane" }, h("small", { class: "muted" }, "a strategy object (see the README's Strategies)"), json),
  };
  const tabs = Object.keys(panes).map((mode) => h("label", { class: "tab" },
    h("input", { type: "radio", name: "mode", value: mode, onchange: () => setMode(mode) }), ` ${mode}`));
  let mode = "signals";

  function showTemplate() {
    const t = templates.find((x) => x.name === tplSelect.value);
    tplHelp.textContent = t ? t.description : "";
    fill(tplParams, t ? templateParams(t) : []);
  }
  function setMode(next) {
    if (next === "json" && mode === "signals") json.value = JSON.stringify(signalStrategy(), null, 2);
    mode = next;
    for (const [name, pane] of Object.entries(panes)) pane.hidden = name !== mode;
    for (const tab of tabs) tab.querySelector("input").checked = tab.textContent.trim() === mode;
  }
  function signalStrategy() {
    const [trigger, filter, exit] = ["trigger", "filter", "exit"].map((s) => slots[s].value(resolutionOf()));
    return { name: [trigger, filter].filter(Boolean).map((s) => s.name).join(" + "), entry: [trigger, filter].filter(Boolean), exit: exit ? [exit] : [] };
  }
  function templateBody() {
    const params = {};
    for (const input of tplParams.querySelectorAll("input, select")) {
      if (input.value === "") continue;
      const number = Number(input.value);
      params[input.name] = input.dataset.numeric === "true" && !Number.isNaN(number) ? number : input.value;
    }
    return { template: tplSelect.value, template_params: params };
  }
  /** The part of the create body that names the strategy; throws on JSON that does not parse. */
  function value() {
    if (mode === "template") return templateBody();
    if (mode === "json") {
      try {
        return { strategy: JSON.parse(json.value) };
      } catch (err) {
        throw new Error(`the strategy JSON does not parse: ${err.message}`);
      }
    }
    return { strategy: signalStrategy() };
  }
  function demo() {
    for (const [slot, preset] of Object.entries(DEMO)) slots[slot].set(preset);
    setMode("signals");
  }
  demo();
  showTemplate();
  const el = h("fieldset", { class: "strategy" }, h("legend", {}, "Strategy"), h("div", { class: "tabs" }, tabs),
    ...Object.values(panes));
  return { el, value, demo, setMode };
}

// Small DOM and formatting helpers shared by every screen.

const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden", "open"]);

/** Build an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  const props = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (PROPS.has(key)) props.push([key, value]);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...kids(children));
  for (const [key, value] of props) el[key] = value; // after the children: a select's value
  return el;
}

function kids(children) {
  return children.flat(Infinity).filter((c) => c != null && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren(...kids(children));
  return el;
}

/** An ISO 8601 time as "2024-03-01 12:00:05" (UTC, as the API gives it). */
export function fmtTime(iso) {
  return iso ? iso.slice(0, 19).replace("T", " ") : "—";
}

const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const SMALL = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });

/** A number with thousands separators; small values keep four significant digits. */
export function fmtNum(value) {
  if (value == null || Number.isNaN(value)) return "—";
  return Math.abs(value) >= 100 ? NUMBER.format(value) : SMALL.format(value);
}

/** A fraction as a percentage: 0.1234 → "12.34%". */
export function fmtPct(value) {
  return value == null ? "—" : `${(value * 100).toFixed(2)}%`;
}

/** Seconds as "4.2 s", "3 min 5 s" or "2 h 10 min". */
export function fmtDuration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The state as a coloured badge. */
export function badge(state) {
  return h("span", { class: `badge ${state}`, dataset: { state } }, state);
}

/** A progress bar; `set(fraction)` moves it. */
export function progressBar(label) {
  const bar = h("div", { class: "bar" });
  const el = h("div", {
    class: "progress", role: "progressbar", "aria-label": label,
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0,
  }, bar);
  el.set = (fraction) => {
    const pct = Math.round(fraction * 1000) / 10;
    el.setAttribute("aria-valuenow", pct);
    el.dataset.progress = fraction;
    bar.style.width = `${pct}%`;
  };
  return el;
}

/** A message line for an error (from api.js) or any text. */
export function notice(kind, text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// Renders /openapi.json for people: operations by tag, their parameters, bodies and answers,
// and every schema, with $ref links between them. No third-party code, nothing from a CDN.

import { h, notice } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete"];
const REF = /"#\/components\/schemas\/([^"]+)"/g;

/** Pretty JSON in which every schema $ref is a link to that schema. */
function jsonWithLinks(value) {
  const text = JSON.stringify(value, null, 2);
  const parts = [];
  let last = 0;
  for (const found of text.matchAll(REF)) {
    parts.push(text.slice(last, found.index), h("a", { href: `#schema-${found[1]}` }, found[0]));
    last = found.index + found[0].length;
  }
  parts.push(text.slice(last));
  return h("pre", { class: "json" }, parts);
}

function schemaName(schema) {
  if (!schema) return "—";
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return h("a", { href: `#schema-${name}` }, name);
  }
  if (schema.type === "array" && schema.items) return h("span", {}, "array of ", schemaName(schema.items));
  return schema.type || "object";
}

/** A property's type in a few words: "string", "array of Trade", "integer | null", "one of a, b". */
function typeOf(schema) {
  if (!schema) return "any";
  if (schema.$ref) return schemaName(schema);
  if (schema.enum) return `one of ${schema.enum.join(", ")}`;
  const options = schema.anyOf || schema.oneOf;
  if (options) return h("span", {}, options.map((o, i) => [i ? " | " : "", typeOf(o)]));
  if (schema.type === "array") return h("span", {}, "array of ", typeOf(schema.items));
  const type = [].concat(schema.type || "object").join(" | ");
  return schema.format ? `${type} (${schema.format})` : type;
}

const RULES = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "pattern", "default"];

/** A schema's properties as a table, then the schema itself as JSON. */
function schemaBody(schema) {
  const props = Object.entries(schema.properties || {});
  const required = new Set(schema.required || []);
  const table = props.length ? h("table", {}, h("tbody", {}, props.map(([name, p]) => h("tr", {},
    h("td", {}, h("code", {}, name)), h("td", {}, typeOf(p)), h("td", {}, required.has(name) ? "required" : ""),
    h("td", { class: "muted" }, [p.description, ...RULES.filter((r) => p[r] !== undefined).map((r) => `${r} ${JSON.stringify(p[r])}`)].filter(Boolean).join("; ")))))) : null;
  return [schema.description ? h("p", {}, schema.description) : null, table,
    h("details", {}, h("summary", { class: "muted" }, "JSON Schema"), jsonWithLinks(schema))];
}

function content(body) {
  const [type, media] = Object.entries(body.content || {})[0] || [];
  return type ? [h("code", {}, type), " ", schemaName(media.schema)] : [];
}

function operation(path, method, op) {
  const params = op.parameters || [];
  const responses = Object.entries(op.responses || {});
  return h("details", { class: "op", id: `op-${method}-${path}`, dataset: { method, path } },
    h("summary", {}, h("span", { class: `method ${method}` }, method), h("span", { class: "path" }, path),
      h("span", { class: "muted" }, op.summary || "")),
    h("div", {},
      op.description ? h("p", {}, op.description) : null,
      op.security && !op.security.length ? h("p", { class: "muted" }, "no key needed") : null,
      params.length ? [h("h3", {}, "Parameters"), h("table", {}, h("tbody", {}, params.map((p) => h("tr", {},
        h("td", {}, h("code", {}, p.name)), h("td", {}, p.in), h("td", {}, p.required ? "required" : ""),
        h("td", {}, schemaName(p.schema)), h("td", { class: "muted" }, p.description || "")))))] : null,
      op.requestBody ? [h("h3", {}, "Request body"), h("p", {}, content(op.requestBody))] : null,
      responses.length ? [h("h3", {}, "Responses"), h("table", {}, h("tbody", {}, responses.map(([code, r]) => h("tr", {},
        h("td", {}, h("strong", {}, code)), h("td", {}, r.description || ""), h("td", {}, content(r)))))) ] : null));
}

function render(doc) {
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { ...t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, { name: tag, ops: [] });
      byTag.get(tag).ops.push(operation(path, method, op));
    }
  }
  const schemas = Object.entries(doc.components?.schemas || {}).sort(([a], [b]) => a.localeCompare(b));
  const schemes = Object.entries(doc.components?.securitySchemes || {});
  return [
    h("h1", {}, `${doc.info.title} API `, h("small", { class: "muted" }, `v${doc.info.version} · OpenAPI ${doc.openapi}`)),
    h("p", {}, doc.info.description || "", " · ", h("a", { href: "/openapi.json" }, "openapi.json"), " · ", h("a", { href: "/" }, "the browser page")),
    h("p", { class: "muted" }, "Authentication: ", schemes.map(([name, s]) => `${name} (${s.scheme || s.in + " " + s.name})`).join(", ")),
    h("nav", { class: "toc" }, [...byTag.values()].map((t) => h("a", { href: `#tag-${t.name}` }, `${t.name} (${t.ops.length})`)),
      h("a", { href: "#schemas" }, `schemas (${schemas.length})`)),
    [...byTag.values()].filter((t) => t.ops.length).map((t) => h("section", { id: `tag-${t.name}` },
      h("h2", {}, t.name), t.description ? h("p", { class: "muted" }, t.description) : null, t.ops)),
    h("section", { id: "schemas" }, h("h2", {}, "Schemas"), schemas.map(([name, schema]) =>
      h("details", { class: "schema", id: `schema-${name}` }, h("summary", {}, name), h("div", {}, schemaBody(schema))))),
  ];
}

function openTarget() {
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target && target.tagName === "DETAILS") target.open = true;
  if (target) target.scrollIntoView();
}

const root = document.getElementById("docs");
fetch("/openapi.json")
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`GET /openapi.json: HTTP ${res.status}`))))
  .then((doc) => {
    root.replaceChildren(...render(doc).flat(Infinity).filter(Boolean));
    root.dataset.operations = root.querySelectorAll(".op").length;
    openTarget();
  })
  .catch((err) => root.replaceChildren(notice("error", err.message)));
addEventListener("hashchange", openTarget);

// The page: sign in with an API key, then a hash router over the three screens.

import { Api, ApiError, session } from "./api.js";
import { fill, h, notice } from "./dom.js";
import { newRun } from "./newrun.js";
import { runView } from "./runview.js";
import { runList } from "./runs.js";

const app = document.getElementById("app");
const nav = document.getElementById("nav");
let screen = null;

function signOut(message) {
  session.key = null;
  route(message);
}

function signIn(message) {
  const key = h("input", { id: "key", type: "password", autocomplete: "off", placeholder: "bs_…", required: true, autofocus: true });
  const messages = h("div", { class: "messages" }, message ? notice("error", message) : null);
  const button = h("button", { type: "submit", id: "sign-in" }, "Sign in");
  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    try {
      await new Api(key.value.trim()).runs({ limit: 1 }); // a request that needs a good key
      session.key = key.value.trim();
      route();
    } catch (err) {
      fill(messages, notice("error", err instanceof ApiError && err.status === 401 ? "invalid API key" : err.message));
    } finally {
      button.disabled = false;
    }
  }
  return {
    el: h("main", { class: "sign-in" },
      h("h1", {}, "Sign in"),
      h("p", { class: "muted" }, "With an API key: the one the server printed at its first start, or one from ",
        h("code", {}, "barstream keys create --user NAME"), ". It is kept in this tab's session storage only."),
      h("form", { onsubmit: submit }, h("label", {}, "API key ", key), button), messages),
    destroy() {},
  };
}

function navigation(signedIn) {
  fill(nav,
    signedIn ? [h("a", { href: "#/runs" }, "Runs"), h("a", { href: "#/new" }, "New run")] : [],
    h("a", { href: "/docs" }, "API docs"),
    signedIn ? h("button", { type: "button", class: "link-button", id: "sign-out", onclick: () => signOut() }, "Sign out") : null);
}

function route(message) {
  if (screen) screen.destroy();
  const key = session.key;
  navigation(Boolean(key));
  if (!key) {
    screen = signIn(message);
  } else {
    const api = new Api(key, () => signOut("the API key was refused (401): sign in again"));
    const [path, query] = (location.hash.slice(1) || "/runs").split("?");
    const params = new URLSearchParams(query || "");
    const run = /^\/run\/([^/]+)$/.exec(path);
    if (run) screen = runView(api, decodeURIComponent(run[1]));
    else if (path === "/new") screen = newRun(api);
    else screen = runList(api, params);
  }
  fill(app, screen.el);
}

addEventListener("hashchange", () => route());
route();

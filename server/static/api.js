// The REST side of the public API, with the key as a Bearer token.

const KEY = "barstream.key";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

/** An error answer: `{"error": {"code", "message", "field"?, "details"?}}`, or no answer. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `HTTP ${status}` : "the server cannot be reached"));
    this.status = status;
    this.code = error.code || (status ? `http_${status}` : "network_error");
    this.field = error.field || null;
    this.details = error.details || [];
  }

  /** "invalid_strategy: unknown signal 'x' (strategy.entry[0].name)". */
  describe() {
    return `${this.code}: ${this.message}${this.field ? ` (${this.field})` : ""}`;
  }
}

/** Any error as one line: an API error with its code and field, else its message. */
export function explain(err) {
  return err instanceof ApiError ? err.describe() : String((err && err.message) || err);
}

export class Api {
  /** `onUnauthorized` runs on any 401, so the page can ask for a key again. */
  constructor(key, onUnauthorized) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, null);
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      if (res.status === 401 && this.onUnauthorized) this.onUnauthorized();
      throw new ApiError(res.status, data);
    }
    return { data, headers: res.headers };
  }

  async get(path) { return (await this.request("GET", path)).data; }
  async post(path, body) { return (await this.request("POST", path, body)).data; }

  /** One page of runs: `{runs, total, next}`; `next` is the cursor of the following page. */
  async runs({ state, archived, cursor, limit = 20 }) {
    const query = new URLSearchParams({ limit });
    if (state) query.set("state", state);
    if (archived) query.set("include_archived", "true");
    if (cursor) query.set("cursor", cursor);
    const { data, headers } = await this.request("GET", `/api/v2/backtests?${query}`);
    return { runs: data, total: Number(headers.get("X-Total-Count")), next: nextCursor(headers.get("Link")) };
  }

  run(id) { return this.get(`/api/v2/backtests/${encodeURIComponent(id)}`); }
  results(id) { return this.get(`/api/v2/backtests/${encodeURIComponent(id)}/results`); }

  /** The page of a listing at `url` (a results `next` link or a `Link` header): `{rows, next}`. */
  async listing(url) {
    const { data, headers } = await this.request("GET", url);
    const found = /<([^>]*)>\s*;\s*rel="next"/.exec(headers.get("Link") || "");
    return { rows: data, next: found ? found[1] : null };
  }
  act(id, action) { return this.post(`/api/v2/backtests/${encodeURIComponent(id)}/${action}`); }
}

/** The `cursor` of a `Link: <…>; rel="next"` header, or null on the last page. */
export function nextCursor(link) {
  const found = /<([^>]*)>\s*;\s*rel="next"/.exec(link || "");
  return found ? new URL(found[1], location.href).searchParams.get("cursor") : null;
}

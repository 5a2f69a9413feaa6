// Follows one run's events over the WebSocket and reconnects by itself after a drop.
//
// Ids are per run, 1, 2, 3 … with no gaps. The follower keeps the last id it applied, resumes
// with `last_event_id` after a drop (with exponential backoff and jitter), ignores any id at or
// below it, and treats any other jump as a gap: it says so and resyncs from its last id.

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** Milliseconds before reconnect attempt `n` (0-based): 250 ms doubling to 10 s, 50–100% jitter. */
export function backoff(n) {
  const base = Math.min(10_000, 250 * 2 ** n);
  return base / 2 + (Math.random() * base) / 2;
}

export class RunStream {
  /**
   * `onEvent(event)` gets each event once, in id order; `onStatus(status, detail)` hears
   * "connecting", "live", "reconnecting", "resumed", "gap", "finished" and "refused".
   */
  constructor(runId, key, { onEvent, onStatus }) {
    Object.assign(this, { runId, key, onEvent, onStatus });
    this.lastId = 0;
    this.attempt = 0;
    this.reconnects = 0;
    this.ignored = 0; // ids at or below lastId, seen again (none expected)
    this.done = false;
    this.stopped = false;
  }

  start() {
    this.onStatus("connecting", {});
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ api_key: this.key });
    if (this.lastId > 0) query.set("last_event_id", String(this.lastId));
    return `${scheme}//${location.host}/api/v2/backtests/${encodeURIComponent(this.runId)}/stream?${query}`;
  }

  connect() {
    const ws = new WebSocket(this.url());
    const from = this.lastId;
    this.ws = ws;
    ws.onopen = () => this.onStatus(this.reconnects ? "resumed" : "live", { from, reconnects: this.reconnects });
    ws.onmessage = (message) => this.receive(ws, JSON.parse(message.data));
    ws.onclose = (close) => this.closed(ws, close);
  }

  receive(ws, event) {
    if (ws !== this.ws || this.stopped) return;
    this.attempt = 0;
    if (event.id <= this.lastId) {
      this.ignored += 1;
      return;
    }
    if (event.id !== this.lastId + 1) {
      this.onStatus("gap", { expected: this.lastId + 1, got: event.id });
      ws.close(4000, "gap"); // resync from lastId
      return;
    }
    this.lastId = event.id;
    if (event.type === "state" && TERMINAL.has(event.data.state)) this.done = true;
    this.onEvent(event);
  }

  closed(ws, close) {
    if (ws !== this.ws || this.stopped) return;
    if (this.done) {
      this.onStatus("finished", { lastId: this.lastId });
      return;
    }
    if (close.code === 1008) {
      this.stopped = true;
      this.onStatus("refused", { reason: close.reason });
      return;
    }
    const delay = backoff(this.attempt);
    this.attempt += 1;
    this.reconnects += 1;
    this.onStatus("reconnecting", { attempt: this.attempt, delay, code: close.code, lastId: this.lastId });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

// The live stream over the gateway's WebSocket: a token message first (browsers cannot set headers), every
// crisis's history on the first connection (backfill), then on every reconnect the cursor of the last
// event seen, so nothing is lost and nothing repeats.

const REFUSED = new Set([1003, 1007, 1008, 1009]); // credentials or a message the gateway will never take

export class Stream {
  constructor({ url, key, onEvent, onControl, onState }) {
    Object.assign(this, { url, key, onEvent, onControl, onState });
    this.cursor = null;
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "signed out");
  }

  open() {
    this.onState(this.attempt ? "reconnecting" : "connecting", this.attempt ? `reconnecting (attempt ${this.attempt})` : "connecting");
    const socket = new WebSocket(this.url, "cloudevents.json");
    this.socket = socket;
    socket.addEventListener("open", () => {
      const subscription = { type: "auth", token: this.key, mode: "both" };
      if (this.cursor) subscription.cursor = this.cursor;
      else subscription.backfill = true;
      socket.send(JSON.stringify(subscription));
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  receive(text) {
    let message;
    try { message = JSON.parse(text); } catch { return; }
    if (message.cursor) this.cursor = message.cursor;
    if (typeof message.type === "string" && message.type.includes(".")) {
      this.onEvent(message);
      return;
    }
    if (message.type === "subscribed") {
      this.attempt = 0;
      this.onState("live", "live");
    }
    this.onControl(message);
  }

  closed(socket, event) {
    if (socket !== this.socket || this.stopped) return;
    if (REFUSED.has(event.code)) {
      this.onState("refused", `stream refused: ${event.reason || event.code}`);
      return;
    }
    // Backoff with jitter, capped: a gateway restart is not met by every console at the same instant.
    this.attempt += 1;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5)) * (0.5 + Math.random() / 2);
    this.onState("reconnecting", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this.open(), delay);
  }
}

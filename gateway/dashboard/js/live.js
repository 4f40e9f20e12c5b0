// Live updates through the public subscription API: `caseEvents` over the graphql-transport-ws protocol
// (the one /graphql serves). Each event carries its cursor; after a network drop the client reconnects
// with backoff and resubscribes with `after: <last cursor>`, so nothing between is lost or repeated.

import { signOut, token } from "./api.js";

const PROTOCOL = "graphql-transport-ws";
const CURSOR_KEY = "minsheng.live.cursor";
const MAX_BACKOFF_MS = 15000;

export const SUBSCRIPTION = `subscription Live($after: String) {
  caseEvents(after: $after) { cursor type at clusterId caseId status channels title }
}`;

export class LiveFeed {
  /**
   * @param {(event: object) => void} onEvent  called once per event, in order
   * @param {(state: string, detail?: string) => void} onState  "connecting" | "on" | "retry" | "unavailable"
   * @param {() => void} onResync  the cursor expired: everything shown must be re-read
   */
  constructor(onEvent, onState, onResync = () => {}) {
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onState = onState;
    this.cursor = sessionStorage.getItem(CURSOR_KEY);
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.reconnects = 0;
    addEventListener("online", () => this.reconnectNow());
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "stopped");
    this.socket = null;
  }

  /** Close the socket as a network drop would; it reconnects by itself with backoff. */
  drop() {
    if (this.socket) this.socket.close(4499, "dropped");
  }

  /** Go offline until resume() (the browser tests make changes meanwhile to prove nothing is missed). */
  pause() {
    this.stop();
    this.onState("retry", "paused");
  }

  resume() {
    this.start();
  }

  reconnectNow() {
    if (this.stopped || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    this.onState("connecting");
    const socket = new WebSocket(url, PROTOCOL);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init",
      payload: token() ? { Authorization: `Bearer ${token()}` } : {} }));
    socket.onmessage = (message) => this.receive(socket, JSON.parse(message.data));
    socket.onclose = (close) => this.closed(socket, close);
  }

  receive(socket, message) {
    if (message.type === "connection_ack") {
      this.attempt = 0;
      // Back after a drop with no cursor yet (no event had arrived): nothing to resume from, so re-read.
      if (!this.cursor && this.reconnects > 0) this.onResync();
      socket.send(JSON.stringify({ id: "live", type: "subscribe",
        payload: { query: SUBSCRIPTION, variables: this.cursor ? { after: this.cursor } : {} } }));
      this.onState("on");
    } else if (message.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (message.type === "next") {
      const event = message.payload?.data?.caseEvents;
      if (!event) return;
      this.cursor = event.cursor;
      sessionStorage.setItem(CURSOR_KEY, this.cursor);
      this.onEvent(event);
    } else if (message.type === "error") {
      const errors = message.payload || [];
      const text = errors.map((error) => error.message).join("；");
      if (errors.some((error) => error.extensions?.code === "CURSOR_EXPIRED")) {
        // The events after our cursor are gone: re-read the current state, then follow from now.
        this.cursor = null;
        sessionStorage.removeItem(CURSOR_KEY);
        this.onResync();
        socket.close(1000, "resync");
        return;
      }
      this.stopped = /Cannot query field|Unknown|not defined/.test(text);
      this.onState(this.stopped ? "unavailable" : "retry", text);
      socket.close(1000, "error");
    }
  }

  closed(socket, close) {
    if (socket !== this.socket || this.stopped) return;
    if (close.code === 4403 || close.code === 4401) {  // the token was refused: sign in again
      this.stopped = true;
      signOut();
      return;
    }
    this.socket = null;
    this.reconnects += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.onState("retry", close.reason || `code ${close.code}`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

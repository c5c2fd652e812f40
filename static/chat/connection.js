// The room's socket (docs/protocol-v1.md, The WebSocket; docs/protocol.md).
// It resumes with after=<last id> on every reconnect, backs off with jitter,
// and resends what was not acknowledged with the same client_id, in the order
// it was written: nothing is lost or doubled. Close codes come from the page's
// one table (chat/protocol.py).

const PING_EVERY = 25000;
const PONG_WITHIN = 10000;
// The browser's own code: the connection died without a close frame.
const CLOSE_NO_FRAME = 1006;

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
}

export class Connection {
  // slug: the room; close: the close codes by name; lastId(): the newest id shown;
  // onFrame(frame): every frame but pong; onStatus(text, state); onLost(): the
  // socket closed, a new one will follow; onEnd(code): closed for good.
  constructor({ slug, close, lastId, onFrame, onStatus, onLost, onEnd }) {
    this.slug = slug;
    this.close = close;
    this.lastId = lastId;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.onLost = onLost;
    this.onEnd = onEnd;
    this.socket = null;
    this.attempt = 0;
    this.troubled = false; // the connection was lost since the last welcome
    this.ended = false; // refused for good (FORBIDDEN, NOT_FOUND, UNAUTHENTICATED)
    this.fromStart = false; // the server refused our after=: resume from the start
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pongDeadline = null;
    this.backOnlineTimer = null;
    this.pending = new Map(); // client_id -> {body, reply_to}, in the order they were written
    this.holdUntil = 0; // no send before this time (rate_limited, unavailable)
    this.holdTimer = null;
    // After a hold, one message at a time until the queue is empty: sending them all
    // at once would have all but the first refused again, and ten refusals in a
    // row close the socket (4429) for half a minute.
    this.trickle = false;
    window.addEventListener("online", () => {
      if (!this.socket) this.connect();
      else this.checkAlive();
    });
    window.addEventListener("offline", () => this.checkAlive());
  }

  isOpen() {
    return Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
  }

  // A frame that need not survive a reconnect (typing, read, history): dropped when closed.
  send(frame) {
    if (!this.isOpen()) return false;
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  }

  setStatus(text, state) {
    clearTimeout(this.backOnlineTimer);
    this.onStatus(text, state);
  }

  // --- messages until acknowledged -------------------------------------------------------

  // A new message ({body, reply_to}): sent now if it can be, and again after every
  // reconnect until settled; its client_id.
  queue(message) {
    const clientId = newClientId();
    this.pending.set(clientId, message);
    this.sendPending(clientId);
    return clientId;
  }

  isPending(clientId) {
    return Boolean(clientId) && this.pending.has(clientId);
  }

  // Acknowledged, or refused for good: never sent again. While trickling, the next goes.
  settle(clientId) {
    this.pending.delete(clientId);
    if (!this.pending.size) this.trickle = false;
    else if (this.trickle && !this.holding()) this.sendPending(this.pending.keys().next().value);
  }

  holding() {
    return Date.now() < this.holdUntil;
  }

  // One wait for the whole queue, then everything unacknowledged goes again in
  // the order it was written: messages never overtake each other on a retry.
  hold(seconds) {
    this.holdUntil = Math.max(this.holdUntil, Date.now() + seconds * 1000);
    clearTimeout(this.holdTimer);
    this.trickle = true;
    this.holdTimer = setTimeout(() => {
      this.holdUntil = 0;
      this.sendAllPending();
    }, this.holdUntil - Date.now());
    return (this.holdUntil - Date.now()) / 1000;
  }

  sendPending(clientId) {
    const message = this.pending.get(clientId);
    if (message === undefined || this.holding()) return;
    // Trickling: a new message waits its turn behind the first one still pending.
    if (this.trickle && clientId !== this.pending.keys().next().value) return;
    this.send(Object.assign({ type: "message.send", client_id: clientId }, message));
  }

  sendAllPending() {
    for (const clientId of this.pending.keys()) {
      this.sendPending(clientId);
      if (this.trickle) return; // the next when this one is settled
    }
  }

  // --- the socket ------------------------------------------------------------------------

  connect() {
    clearTimeout(this.reconnectTimer);
    if (this.ended) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.fromStart ? 0 : this.lastId();
    const url = scheme + "//" + location.host + "/ws/rooms/" + encodeURIComponent(this.slug) + "/?after=" + after;
    if (this.attempt) this.setStatus("Reconnecting…", "reconnecting");
    else this.setStatus("Connecting…", "connecting");
    const current = new WebSocket(url);
    this.socket = current;
    current.addEventListener("message", (event) => {
      if (current === this.socket) this.received(event);
    });
    current.addEventListener("open", () => {
      if (current !== this.socket) return;
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.checkAlive(), PING_EVERY);
    });
    current.addEventListener("close", (event) => {
      if (current !== this.socket) return;
      this.socket = null;
      this.closed(event.code);
    });
  }

  received(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "pong") {
      clearTimeout(this.pongDeadline);
      return;
    }
    if (frame.type === "welcome") this.welcomed();
    this.onFrame(frame);
  }

  welcomed() {
    this.attempt = 0;
    this.fromStart = false;
    if (this.troubled) {
      this.setStatus("Back online", "online");
      // Said briefly, then out of the way.
      this.backOnlineTimer = setTimeout(() => this.onStatus("", "online"), 3000);
    } else {
      this.setStatus("", "online");
    }
    this.troubled = false;
    this.sendAllPending();
  }

  // A socket that does not answer a ping in time is treated as gone, without
  // waiting for a close handshake that a dead network never completes.
  checkAlive() {
    if (!this.isOpen()) return;
    const current = this.socket;
    current.send('{"type":"ping"}');
    clearTimeout(this.pongDeadline);
    this.pongDeadline = setTimeout(() => {
      if (current !== this.socket) return;
      this.socket = null;
      try { current.close(); } catch (error) { /* already closing */ }
      this.closed(CLOSE_NO_FRAME);
    }, PONG_WITHIN);
  }

  closed(code) {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongDeadline);
    clearTimeout(this.reconnectTimer);
    this.onLost();
    if (code === this.close.UNAUTHENTICATED || code === this.close.FORBIDDEN || code === this.close.NOT_FOUND) {
      this.ended = true;
      this.onEnd(code);
      return;
    }
    if (code === this.close.BAD_QUERY) this.fromStart = true;
    // Everything else is worth another try, resuming after the last id: a
    // restart (SERVICE_RESTART), a busy server (TRY_AGAIN_LATER), a fault on
    // the server's side (INTERNAL_ERROR), a network that went away.
    this.troubled = true;
    this.attempt += 1;
    // Exponential backoff with full jitter, capped at 30 s; flooding waits the full 30 s.
    const cap = Math.min(30000, 500 * Math.pow(2, this.attempt));
    const delay = code === this.close.FLOODING ? 30000 : Math.random() * cap;
    this.setStatus("Reconnecting…", "reconnecting");
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

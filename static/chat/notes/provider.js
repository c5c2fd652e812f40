// The notes socket (docs/protocol.md, Shared notes): the standard y-websocket
// messages (y-protocols' sync and awareness, lib0's varuint framing) over
// /ws/rooms/<slug>/notes/?acks=1, and the site's one extension, message 100,
// which says how many of this socket's updates are stored.
//
// On every connect it sends sync step 1, so that the server answers with all
// it missed, and answers the server's step 1 with what the server is missing
// (edits made while offline), as an update message (none when nothing is
// missing): every update it sends is one the server stores and counts. It reconnects with backoff and full jitter, and
// is closed for good only by the codes that say so (not signed in, deactivated,
// a room it may not read).

import * as decoding from "../vendor/lib0/decoding.js";
import * as encoding from "../vendor/lib0/encoding.js";
import * as awarenessProtocol from "../vendor/y-protocols/awareness.js";
import * as syncProtocol from "../vendor/y-protocols/sync.js";
import * as Y from "../vendor/yjs/yjs.js";

export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;
export const MESSAGE_ACK = 100;

const PERMISSION_DENIED = 0;
const BACKOFF_CAP = 30000;
// A socket that has said nothing for this long is checked by asking for awareness:
// the server answers, or the network is gone.
const QUIET_CHECK = 30000;
const ANSWER_WITHIN = 10000;

// An update that changes nothing: no structs, an empty delete set.
function isEmptyUpdate(update) {
  return update.length === 2 && update[0] === 0 && update[1] === 0;
}

export class NotesProvider {
  // slug: the room; doc: a Y.Doc; awareness: its y-protocols Awareness; close: the
  // close codes by name; onState(state): "connecting", "synced", "offline" or "ended";
  // onSaved(pending): the count of this socket's updates not yet stored; onRefused(reason):
  // the server refused an update (it was not applied there); onEnd(code): closed for good;
  // onClosed(code): a socket closed, another will follow.
  constructor({ slug, doc, awareness, close, onState, onSaved, onRefused, onEnd, onClosed }) {
    this.slug = slug;
    this.doc = doc;
    this.awareness = awareness;
    this.close = close;
    this.onState = onState;
    this.onSaved = onSaved;
    this.onRefused = onRefused;
    this.onEnd = onEnd;
    this.onClosed = onClosed || function () {};
    this.socket = null;
    this.synced = false;
    this.attempt = 0;
    this.ended = false;
    this.stopped = false;
    this.reconnectTimer = null;
    this.quietTimer = null;
    this.answerTimer = null;
    // Update messages this socket sent and the server's
    // count of them stored: the "saved" indicator.
    this.sent = 0;
    this.stored = 0;
    // Local edits made while no socket was open: sent by the answer to the server's step 1.
    this.unsent = false;

    // A reader's page sends no update: the server would refuse it.
    this.readOnly = false;

    this.onUpdate = (update, origin) => {
      if (origin === this || this.readOnly) return;
      if (!this.isOpen()) {
        this.unsent = true;
        this.onSaved(this.pending());
        return;
      }
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      syncProtocol.writeUpdate(encoder, update);
      this.sendUpdate(encoding.toUint8Array(encoder));
    };
    this.onAwareness = ({ added, updated, removed }, origin) => {
      if (origin === this) return;
      const changed = added.concat(updated, removed);
      if (!this.isOpen() || !changed.length) return;
      this.sendAwareness(changed);
    };
    this.onOnline = () => {
      if (!this.socket && !this.ended && !this.stopped) this.connect();
      else this.checkAlive();
    };
    this.onOffline = () => this.checkAlive();
    this.onUnload = () => {
      awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], "window unload");
    };
    doc.on("update", this.onUpdate);
    awareness.on("update", this.onAwareness);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("pagehide", this.onUnload);
  }

  isOpen() {
    return Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
  }

  // How many local changes are not yet known to be stored.
  pending() {
    return Math.max(0, this.sent - this.stored) + (this.unsent ? 1 : 0);
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    if (this.ended || this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/ws/rooms/" + encodeURIComponent(this.slug) + "/notes/?acks=1";
    this.onState("connecting");
    const current = new WebSocket(url);
    current.binaryType = "arraybuffer";
    this.socket = current;
    this.synced = false;
    // A new socket counts its own updates from zero.
    this.sent = 0;
    this.stored = 0;
    current.addEventListener("open", () => {
      if (current !== this.socket) return;
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      syncProtocol.writeSyncStep1(encoder, this.doc);
      current.send(encoding.toUint8Array(encoder));
      if (this.awareness.getLocalState() !== null) this.sendAwareness([this.doc.clientID]);
      this.heard();
    });
    current.addEventListener("message", (event) => {
      if (current !== this.socket) return;
      this.heard();
      if (!(event.data instanceof ArrayBuffer)) return;
      this.received(new Uint8Array(event.data));
    });
    current.addEventListener("close", (event) => {
      if (current !== this.socket) return;
      this.socket = null;
      this.closed(event.code);
    });
  }

  // Stop for good (the page is done with this document): no reconnect.
  destroy() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.quietTimer);
    clearTimeout(this.answerTimer);
    this.doc.off("update", this.onUpdate);
    this.awareness.off("update", this.onAwareness);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    window.removeEventListener("pagehide", this.onUnload);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      try { socket.close(); } catch (error) { /* already closing */ }
    }
  }

  sendUpdate(bytes) {
    this.socket.send(bytes);
    this.sent += 1;
    this.onSaved(this.pending());
  }

  sendAwareness(clients) {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients));
    this.socket.send(encoding.toUint8Array(encoder));
  }

  received(bytes) {
    const decoder = decoding.createDecoder(bytes);
    let kind;
    try {
      kind = decoding.readVarUint(decoder);
      switch (kind) {
        case MESSAGE_SYNC:
          this.receivedSync(decoder);
          break;
        case MESSAGE_AWARENESS:
          awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), this);
          break;
        case MESSAGE_AUTH:
          if (decoding.readVarUint(decoder) === PERMISSION_DENIED) this.onRefused(decoding.readVarString(decoder));
          break;
        case MESSAGE_QUERY_AWARENESS:
          this.sendAwareness(Array.from(this.awareness.getStates().keys()));
          break;
        case MESSAGE_ACK:
          this.stored = Math.max(this.stored, decoding.readVarUint(decoder));
          this.onSaved(this.pending());
          break;
      }
    } catch (error) {
      // A message this page cannot read: the next connect's sync puts things right.
      console.error("notes: unreadable message", kind, error);
    }
  }

  receivedSync(decoder) {
    const step = decoding.readVarUint(decoder);
    if (step === syncProtocol.messageYjsSyncStep1) {
      // The server's state vector: what it lacks (edits made offline, updates it never
      // stored) goes back as an update message, which every server counts and stores;
      // nothing goes when it lacks nothing.
      const missing = Y.encodeStateAsUpdate(this.doc, decoding.readVarUint8Array(decoder));
      this.unsent = false;
      if (this.readOnly || isEmptyUpdate(missing)) {
        this.onSaved(this.pending());
        return;
      }
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      syncProtocol.writeUpdate(encoder, missing);
      this.sendUpdate(encoding.toUint8Array(encoder));
    } else if (step === syncProtocol.messageYjsSyncStep2 || step === syncProtocol.messageYjsUpdate) {
      Y.applyUpdate(this.doc, decoding.readVarUint8Array(decoder), this);
      if (step === syncProtocol.messageYjsSyncStep2 && !this.synced) {
        this.synced = true;
        this.attempt = 0;
        this.onState("synced");
      }
    }
  }

  // --- liveness and reconnects -----------------------------------------------------------

  heard() {
    clearTimeout(this.answerTimer);
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.checkAlive(), QUIET_CHECK);
  }

  // Ask the server something it always answers; no answer in time means the
  // socket is gone, whatever the browser believes.
  checkAlive() {
    if (!this.isOpen()) return;
    const current = this.socket;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_QUERY_AWARENESS);
    current.send(encoding.toUint8Array(encoder));
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => {
      if (current !== this.socket) return;
      this.socket = null;
      try { current.close(); } catch (error) { /* already closing */ }
      this.closed(1006);
    }, ANSWER_WITHIN);
  }

  closed(code) {
    clearTimeout(this.quietTimer);
    clearTimeout(this.answerTimer);
    this.synced = false;
    // Updates sent but not acknowledged may not be stored: the next sync step 1
    // of the server finds them missing, and our step 2 sends them again.
    if (this.sent > this.stored) this.unsent = true;
    // Everyone else's cursors are stale until the next socket says otherwise.
    const others = Array.from(this.awareness.getStates().keys()).filter((id) => id !== this.doc.clientID);
    awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
    this.onClosed(code);
    if (this.stopped) return;
    if (code === this.close.UNAUTHENTICATED || code === this.close.FORBIDDEN || code === this.close.NOT_FOUND) {
      this.ended = true;
      this.onState("ended");
      this.onEnd(code);
      return;
    }
    this.onState("offline");
    this.attempt += 1;
    // Exponential backoff with full jitter, capped; the first retry is quick.
    const cap = Math.min(BACKOFF_CAP, 500 * Math.pow(2, this.attempt));
    const delay = this.attempt === 1 ? 250 + Math.random() * 500 : Math.random() * cap;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

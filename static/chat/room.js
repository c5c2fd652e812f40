// The room page (docs/protocol-v1.md, docs/protocol.md): it wires the socket,
// the message list, the composer and presence together. What the page needs
// from the server comes from #room's data attributes: the room, the reader,
// the newest id, the body limit and the close codes (chat/protocol.py).

import { Composer } from "./composer.js";
import { Connection } from "./connection.js";
import { MessageList } from "./messages.js";
import { Presence } from "./presence.js";

const root = document.getElementById("room");
const byId = (id) => document.getElementById(id);
const RETRYABLE = new Set(["unavailable", "rate_limited"]);

const me = root.dataset.username;
const kind = root.dataset.kind;
const CLOSE = JSON.parse(root.dataset.closeCodes);
const titleHeading = byId("room-title");
const notice = byId("room-notice");
const statusLine = byId("connection");

let archived = root.dataset.archived === "true";
let roomTitle = titleHeading.textContent;
let closedReason = ""; // set when the server refused us for good (FORBIDDEN, NOT_FOUND)
let unseen = 0; // messages that arrived while the tab was hidden

const connection = new Connection({
  slug: root.dataset.slug,
  close: CLOSE,
  lastId: () => messages.lastId,
  onFrame: onFrame,
  onStatus: function (text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
  },
  onLost: function () {
    messages.lost();
    presence.clearTyping();
  },
  onEnd: function (code) {
    if (code === CLOSE.UNAUTHENTICATED) {
      connection.setStatus("Signed out", "offline");
      location.assign("/accounts/login/?next=" + encodeURIComponent(location.pathname));
      return;
    }
    closedReason = code === CLOSE.NOT_FOUND ?
      "This room is no longer available to you." :
      "Your account can no longer chat.";
    connection.setStatus("Disconnected", "offline");
    presence.clear();
    applyReadOnly();
  },
});

const messages = new MessageList({
  list: byId("messages"),
  historyStatus: byId("history-status"),
  jumpButton: byId("jump-latest"),
  me: me,
  lastId: Number(root.dataset.lastId) || 0,
  lastRead: Number(root.dataset.lastRead) || 0,
  hasMore: root.dataset.hasMore === "true",
  requestHistory: (before, limit) => connection.send({ type: "history", before: before, limit: limit }),
  sendRead: (id) => connection.send({ type: "read", id: id }),
  onUnseen: function () {
    unseen += 1;
    setTitle();
  },
});

const composer = new Composer({
  form: byId("composer"),
  input: byId("body"),
  sendButton: byId("send"),
  charCount: byId("char-count"),
  errorLine: byId("send-error"),
  maxLength: Number(root.dataset.bodyMax),
  onSubmit: function (body) {
    messages.addPending(connection.queue(body), body);
  },
  onTyping: () => connection.send('{"type":"typing"}'),
});

const presence = new Presence({
  root: root,
  me: me,
  list: byId("online"),
  count: byId("online-count"),
  toggle: byId("online-toggle"),
  toggleCount: byId("online-toggle-count"),
  panel: byId("online-panel"),
  panelTitle: byId("online-title"),
  panelClose: byId("online-close"),
  typingLine: byId("typing"),
});

function setTitle() {
  document.title = (unseen ? "(" + unseen + ") " : "") + roomTitle + " · Chatsite";
}

// --- the room's state ----------------------------------------------------------------------

function applyReadOnly() {
  root.dataset.archived = archived ? "true" : "false";
  notice.textContent = archived ? "This room is archived" : closedReason;
  composer.setLocked(archived || Boolean(closedReason));
}

function applyRoom(room) {
  if (!room) return;
  archived = Boolean(room.archived);
  // A direct room is titled by the other person, not by its stored name.
  if (kind !== "direct" && room.name) {
    roomTitle = room.name;
    titleHeading.textContent = room.name;
    byId("body").placeholder = "Message " + room.name;
    setTitle();
  }
  applyReadOnly();
}

// --- frames --------------------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case "welcome":
      applyRoom(frame.room);
      presence.welcome(frame.online);
      messages.markRead();
      messages.fillScreen();
      break;
    case "message":
      onMessage(frame);
      break;
    case "history":
      messages.history(frame);
      break;
    case "gap":
      messages.gap(frame);
      break;
    case "presence":
      presence.news(frame);
      break;
    case "typing":
      presence.typing(frame.user);
      break;
    case "room":
      applyRoom(frame.room);
      break;
    case "message.edited":
      messages.edited(frame);
      break;
    case "message.deleted":
      messages.deleted(frame);
      break;
    case "error":
      onError(frame);
      break;
  }
}

function onMessage(frame) {
  if (connection.isPending(frame.client_id)) {
    connection.settle(frame.client_id);
    if (composer.retrying() && !connection.holding()) composer.clearError();
  }
  messages.message(frame);
  presence.stoppedTyping(frame.user);
}

function onError(frame) {
  const waiting = connection.isPending(frame.client_id);
  if (waiting && RETRYABLE.has(frame.code)) {
    const seconds = frame.code === "rate_limited" ? Math.max(Number(frame.retry_after) || 1, 0.2) : 2;
    const wait = connection.hold(seconds);
    if (frame.code === "rate_limited") composer.showWait(wait, "You are sending messages too fast.");
    else composer.showError("unavailable", "The server could not save your message. Trying again…");
    return;
  }
  if (waiting) {
    connection.settle(frame.client_id);
    messages.failed(frame.client_id);
  }
  if (frame.code === "room_archived" && !archived) {
    archived = true;
    applyReadOnly();
  }
  composer.showRefusal(frame);
}

// --- the tab ---------------------------------------------------------------------------------

byId("jump-latest").addEventListener("click", function () {
  messages.scrollToBottom();
  byId("body").focus();
});

document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible") {
    unseen = 0;
    setTitle();
    messages.markRead();
    connection.checkAlive();
  } else {
    messages.hidden();
  }
});

messages.start();
applyReadOnly();
connection.connect();

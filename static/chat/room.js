// The room page (docs/protocol-v1.md, docs/protocol.md): it wires the socket,
// the message list, the composer, message actions, mention completion and
// presence together. What the page needs from the server comes from #room's
// data attributes (the room, the reader, the newest id, the body limit) and
// the close codes from <body> (chat/protocol.py).

import { MessageActions } from "./actions.js";
import { setBaseTitle } from "./attention.js";
import { Composer, muteFromDetail, muteWords } from "./composer.js";
import { Connection } from "./connection.js";
import { MentionCompleter } from "./mentions.js";
import { Messages } from "./messages.js";
import { NotesPanel } from "./notes/panel.js";
import { Presence } from "./presence.js";
import { RoomSettings } from "./settings.js";
import { StateView } from "./state.js";
import { Uploads } from "./uploads.js";

const root = document.getElementById("room");
const byId = (id) => document.getElementById(id);
const RETRYABLE = new Set(["unavailable", "rate_limited"]);

const me = root.dataset.username;
const kind = root.dataset.kind;
const slug = root.dataset.slug;
const CLOSE = JSON.parse(document.body.dataset.closeCodes);
const titleHeading = byId("room-title");
const notice = byId("room-notice");
const statusLine = byId("connection");
const input = byId("body");

// A broadcast room's audience reads; only its publishers post. Someone not
// signed in may watch one open to viewers.
const mayPost = root.dataset.mayPost === "true";
const signedIn = Boolean(me);
const stateView = new StateView(byId("room-state"));
let archived = root.dataset.archived === "true";
let closedReason = ""; // set when the server refused us for good (FORBIDDEN, NOT_FOUND)
// The reader's mute here ({scope, until}) or null: known from the page, the welcome
// and `mute` frames, so that the composer is shut before anything is typed.
let mute = null;
let muteTimer = null;
let replyTo = null; // {id, user, body, deleted}: the message the next one answers

const connection = new Connection({
  slug: slug,
  close: CLOSE,
  lastId: () => messages.store.lastId,
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
    // A private room closes this way when its owners remove the reader.
    closedReason = code !== CLOSE.NOT_FOUND ? "Your account can no longer chat." :
      kind === "private" ? "You were removed from this room." :
      "This room is no longer available to you.";
    connection.setStatus("Disconnected", "offline");
    presence.clear();
    applyReadOnly();
  },
});

const messages = new Messages({
  list: byId("messages"),
  historyStatus: byId("history-status"),
  jumpButton: byId("jump-latest"),
  slug: slug,
  me: me,
  lastId: Number(root.dataset.lastId) || 0,
  lastRead: Number(root.dataset.lastRead) || 0,
  hasMore: root.dataset.hasMore === "true",
  hasNewer: root.dataset.hasNewer === "true",
  requestHistory: (cursor, limit) => connection.send(Object.assign({ type: "history", limit: limit }, cursor)),
  sendRead: (id) => signedIn && connection.send({ type: "read", id: id }),
});

// Files: the 📎 button, dropped on the room, pasted into the box (docs/files.md).
// (Made before the composer, which asks it at once.)
const uploads = new Uploads({
  dropTarget: root,
  tray: byId("upload-tray"),
  button: byId("attach"),
  input: byId("attach-input"),
  box: input,
  maxBytes: Number(root.dataset.uploadMax),
  maxFiles: Number(root.dataset.attachmentsMax),
  onChange: () => composer.update(),
  onError: (text) => composer.showError("upload", text),
});

const composer = new Composer({
  form: byId("composer"),
  input: input,
  sendButton: byId("send"),
  charCount: byId("char-count"),
  errorLine: byId("send-error"),
  maxLength: Number(root.dataset.bodyMax),
  files: () => ({ count: uploads.count(), busy: uploads.busy() }),
  onSubmit: function (body) {
    // Sent from a permalink: the conversation goes on at the newest.
    if (messages.store.detached) messages.jumpToLatest();
    const message = { body: body };
    if (replyTo) message.reply_to = replyTo.id;
    const attachments = uploads.attachments();
    if (attachments.length) message.attachments = attachments.map((attachment) => attachment.id);
    messages.addPending(connection.queue(message), body, replyTo, attachments);
    uploads.clear();
    setReply(null);
  },
  onTyping: () => connection.send('{"type":"typing"}'),
  onKey: function (event) {
    if (completer.keydown(event)) return true;
    if (event.key === "ArrowUp" && !input.value && !event.shiftKey && !event.altKey) {
      // As in Slack and Zulip: ↑ in an empty box edits your last message.
      const last = messages.lastOfMine();
      if (!last) return false;
      event.preventDefault();
      actions.edit(last);
      return true;
    }
    if (event.key === "Escape" && replyTo) {
      setReply(null);
      return true;
    }
    return false;
  },
});

const completer = new MentionCompleter({ input: input, list: byId("mention-list"), slug: slug });

const actions = new MessageActions({
  list: byId("messages"),
  menu: byId("message-menu"),
  picker: byId("emoji-picker"),
  me: me,
  staff: root.dataset.staff === "true",
  send: (frame) => connection.send(frame),
  onReply: function (item) {
    const body = item.querySelector(".body");
    const source = body.dataset.source || body.textContent;
    setReply({ id: Number(item.dataset.id), user: item.dataset.author, body: source.split("\n", 1)[0], deleted: false });
  },
  onRefused: (text) => composer.showError("unavailable", text),
  onNotice: (text) => { byId("history-status").textContent = text; },
});

// The room's shared notes, for people signed in (the panel is not on the page otherwise).
const notes = signedIn && byId("notes-panel") ? new NotesPanel({
  root: root,
  me: me,
  slug: slug,
  close: CLOSE,
  writable: mayPost,
}) : null;

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

function setReply(message) {
  replyTo = message;
  const bar = byId("reply-bar");
  bar.hidden = !message;
  byId("reply-bar-text").textContent = message ? "Replying to " + message.user + ": " + message.body : "";
  if (message) input.focus();
}

// --- the room's state ----------------------------------------------------------------------

function setMute(value) {
  mute = value && typeof value === "object" ? value : null;
  clearTimeout(muteTimer);
  if (mute && mute.until) {
    // Unlocked by the page's own clock when the mute ends (the server refuses until then).
    const left = new Date(mute.until).getTime() - Date.now();
    if (!(left > 0)) mute = null;
    else muteTimer = setTimeout(() => setMute(null), Math.min(left + 500, 2147483647));
  }
  root.dataset.muted = mute ? mute.scope : "";
  applyReadOnly();
}

function applyReadOnly() {
  root.dataset.archived = archived ? "true" : "false";
  let words = archived ? "This room is archived" : closedReason;
  if (!words && mute && mayPost) words = muteWords(mute);
  notice.textContent = words;
  notice.classList.toggle("mute-notice", Boolean(mute) && words === muteWords(mute));
  const locked = archived || Boolean(closedReason) || !mayPost || Boolean(mute);
  composer.setLocked(locked);
  uploads.setEnabled(!locked);
  byId("attach").disabled = locked;
  if (notes) notes.setArchived(archived);
}

function applyRoom(room) {
  if (!room) return;
  archived = Boolean(room.archived);
  // A direct room is titled by the other person, not by its stored name.
  if (kind !== "direct" && room.name) {
    titleHeading.textContent = room.name;
    input.placeholder = "Message " + room.name;
    setBaseTitle(room.name + " · Chatsite");
  }
  applyReadOnly();
}

// --- frames --------------------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case "welcome":
      if ("mute" in frame) setMute(frame.mute);
      applyRoom(frame.room);
      if (frame.room.kind === "broadcast") {
        presence.viewers(frame.viewers);
        stateView.update(frame.state, frame.state_version);
      } else {
        presence.welcome(frame.online);
      }
      messages.markRead();
      messages.fillScreen();
      break;
    case "message":
      onMessage(frame);
      break;
    case "messages":
      // A broadcast room's messages, a tick at a time.
      for (const message of frame.messages) onMessage(message);
      break;
    case "viewers":
      presence.viewers(frame.count);
      break;
    case "room.state":
      stateView.update(frame.state, frame.version);
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
      if (replyTo && replyTo.id === frame.id) setReply(null);
      break;
    case "message.reactions":
      messages.reactions(frame);
      break;
    case "mute":
      setMute(frame.mute);
      if (!mute && composer.errorLine.dataset.code === "muted") composer.clearError();
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
    if (frame.code === "rate_limited") {
      // Said in the composer and under every message still waiting, counting down.
      composer.showWait(wait, "You are sending messages too fast.", (left) => {
        messages.pendingStatus(left > 0 ? "Waiting " + left + " s: sending too fast" : "Sending…");
      });
    } else {
      composer.showError("unavailable", "The server could not save your message. Trying again…");
    }
    return;
  }
  if (waiting) {
    messages.failed(frame.client_id);
    connection.settle(frame.client_id);
  }
  if (frame.code === "muted") setMute(muteFromDetail(frame.detail));
  if (frame.code === "room_archived" && !archived) {
    archived = true;
    applyReadOnly();
  }
  composer.showRefusal(frame);
}

// --- the tab and the header ------------------------------------------------------------------

byId("jump-latest").addEventListener("click", function () {
  messages.jumpToLatest();
  input.focus();
});

byId("reply-cancel").addEventListener("click", function () {
  setReply(null);
});

// A reply's quote takes the reader to its original, paging back as far as needed.
byId("messages").addEventListener("click", function (event) {
  const quote = event.target.closest(".reply-quote");
  if (quote && !quote.classList.contains("deleted")) messages.show(Number(quote.dataset.replyTo));
});

function csrfToken() {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

const notifySetting = byId("notify-setting");
if (notifySetting) notifySetting.addEventListener("change", function (event) {
  const select = event.target;
  const status = byId("notify-status");
  fetch("/api/rooms/" + encodeURIComponent(slug) + "/notify/", {
    method: "PUT",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify({ notify: select.value }),
  })
    .then(function (response) {
      status.textContent = response.ok ? "Saved." : "Not saved: try again.";
    })
    .catch(function () {
      status.textContent = "Not saved: try again.";
    });
});

document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible") {
    messages.markRead();
    connection.checkAlive();
  } else {
    messages.hidden();
  }
});

if (signedIn) new RoomSettings({ slug: slug, me: me, staff: root.dataset.staff === "true", kind: kind });

messages.start(Number(root.dataset.around) || 0);
try {
  setMute(JSON.parse(root.dataset.mute || "null"));
} catch (error) {
  setMute(null);
}
connection.connect();

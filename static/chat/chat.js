// The room page's client (docs/protocol-v1.md, docs/protocol.md). Bodies are always set
// as text, never parsed as HTML: every element is built with createElement and
// textContent. It resumes with after=<last id> on every reconnect and resends
// what was not acknowledged with the same client_id, so nothing is lost or doubled.
"use strict";

(function () {
  const root = document.getElementById("room");
  if (!root) return;

  const slug = root.dataset.slug;
  const me = root.dataset.username;
  const kind = root.dataset.kind;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("body");
  const sendButton = document.getElementById("send");
  const charCount = document.getElementById("char-count");
  const statusLine = document.getElementById("connection");
  const sendError = document.getElementById("send-error");
  const typingLine = document.getElementById("typing");
  const notice = document.getElementById("room-notice");
  const titleHeading = document.getElementById("room-title");
  const historyStatus = document.getElementById("history-status");
  const jumpButton = document.getElementById("jump-latest");
  const onlineList = document.getElementById("online");
  const onlineCount = document.getElementById("online-count");
  const toggleCount = document.getElementById("online-toggle-count");
  const panel = document.getElementById("online-panel");
  const panelToggle = document.getElementById("online-toggle");
  const panelClose = document.getElementById("online-close");
  const panelTitle = document.getElementById("online-title");

  // The server's limit, in code points of the body without surrounding space.
  const MAX_LENGTH = 4000;
  // The server's close codes by name (chat/protocol.py, rendered into the page).
  const CLOSE = JSON.parse(root.dataset.closeCodes);
  const CLOSE_NO_FRAME = 1006; // the browser's own: the connection died without a close frame
  const COUNT_FROM = 3500;
  // A message joins the previous one's group within this time (same author, same day).
  const GROUP_WINDOW = 5 * 60 * 1000;
  const PAGE = 50;
  const AVATAR_COLORS = 10;
  const RETRYABLE = new Set(["unavailable", "rate_limited"]);

  let lastId = Number(root.dataset.lastId) || 0;
  // Messages of others above this number are new to the reader: the unread divider.
  let unreadMark = Number(root.dataset.lastRead) || 0;
  let hasMore = root.dataset.hasMore === "true";
  let archived = root.dataset.archived === "true";
  let roomTitle = titleHeading.textContent;
  let closedReason = ""; // set when the server refused us for good (FORBIDDEN, NOT_FOUND)
  let socket = null;
  let attempt = 0;
  let troubled = false; // the connection was lost since the last welcome
  let reconnectTimer = null;
  let pingTimer = null;
  let pongDeadline = null;
  let backOnlineTimer = null;
  let errorTimer = null;
  let lastTypingSent = 0;
  let lastReadSent = 0;
  let loadingHistory = false;
  let hole = null; // {after, before}: ids not replayed after a long absence (gap), until paged in
  let pinned = true; // the reader is at the newest message: keep them there
  let unseen = 0; // messages that arrived while the tab was hidden
  const pending = new Map(); // client_id -> {body, element}, in the order they were written
  let holdUntil = 0; // no send before this time (rate_limited, unavailable)
  let holdTimer = null;
  const typists = new Map(); // username -> timer
  const online = new Set();

  // --- small helpers -------------------------------------------------------------

  function make(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function codePoints(text) {
    return Array.from(text).length;
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function hash(text) {
    let value = 0;
    for (const character of text) value = (value * 31 + character.codePointAt(0)) >>> 0;
    return value;
  }

  function initials(name) {
    const parts = name.split(/[\s._-]+/).filter(Boolean);
    const words = parts.length > 1 ? parts.slice(0, 2) : [parts[0] || name];
    return words.map(function (word) { return Array.from(word)[0] || ""; }).join("").toUpperCase() || "?";
  }

  // The color comes from the name, so a person keeps theirs on every page and device.
  function paintAvatar(element, name) {
    element.textContent = initials(name);
    element.dataset.color = String(hash(name) % AVATAR_COLORS);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function dayKey(date) {
    return date.getFullYear() + "-" + (date.getMonth() + 1) + "-" + date.getDate();
  }

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (sameDay(date, today)) return "Today";
    if (sameDay(date, yesterday)) return "Yesterday";
    const options = { weekday: "long", month: "long", day: "numeric" };
    if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options);
  }

  function setTime(time, iso) {
    const date = new Date(iso);
    if (isNaN(date.getTime())) return;
    time.dateTime = iso;
    time.textContent = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    time.title = date.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
  }

  const parsedTimes = new WeakMap(); // message element -> {iso, date}

  function createdOf(item) {
    const time = item.querySelector("time");
    const iso = time ? time.dateTime : "";
    const known = parsedTimes.get(item);
    if (known && known.iso === iso) return known.date;
    const date = new Date(iso || NaN);
    parsedTimes.set(item, { iso: iso, date: date });
    return date;
  }

  function isMessage(node) {
    return node.classList.contains("message");
  }

  // --- messages --------------------------------------------------------------------

  function editedMark() {
    return make("span", "edited", "(edited)");
  }

  function setDelivery(item, text) {
    let note = item.querySelector(".delivery");
    if (!text) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      // Under the bubble rather than in its header, which a grouped message hides.
      note = make("span", "delivery");
      item.querySelector(".message-main").append(note);
    }
    note.textContent = text;
  }

  function renderMessage(message, isPending) {
    const item = make("li", "message");
    if (message.user === me) item.classList.add("mine");
    if (isPending) item.classList.add("pending");
    if (message.id) item.dataset.id = String(message.id);
    item.dataset.author = message.user;

    const avatar = make("span", "avatar");
    avatar.setAttribute("aria-hidden", "true");
    paintAvatar(avatar, message.user);

    const meta = make("div", "message-meta");
    const time = document.createElement("time");
    setTime(time, message.created);
    meta.append(make("span", "author", message.user), " ", time);
    if (message.edited) meta.append(" ", editedMark());

    const main = make("div", "message-main");
    main.append(meta, make("p", "body", message.body));
    item.append(avatar, main);
    if (isPending) setDelivery(item, "Sending…");
    return item;
  }

  // Day dividers and groups follow from the messages' order and local dates.
  // regroup(from) recomputes them from the message before `from` to the end (a
  // new message is nearly always last, so that is short); regroup() does the
  // whole list, after history, deletions and out-of-order inserts. Dividers that
  // are still right are kept: a live region would announce every one re-created.
  function regroup(from) {
    let previous = null;
    let gutter = []; // the notes (dividers) between the previous message and this one
    let node = list.firstElementChild;
    if (from && from.parentNode === list) {
      let back = from.previousElementSibling;
      while (back && !isMessage(back)) back = back.previousElementSibling;
      if (back) {
        previous = back;
        node = back.nextElementSibling;
      }
    }
    while (node) {
      const next = node.nextElementSibling;
      if (!isMessage(node)) {
        gutter.push(node);
        node = next;
        continue;
      }
      const created = createdOf(node);
      const day = isNaN(created.getTime()) ? "" : dayKey(created);
      const before = previous ? createdOf(previous) : null;
      const newDay = !previous || (day !== "" && dayKey(before) !== day);
      let divider = null;
      for (const note of gutter) {
        if (!note.classList.contains("day-divider")) continue;
        if (newDay && !divider && note.dataset.day === day) divider = note;
        else note.remove();
      }
      if (newDay && day) {
        if (!divider) {
          divider = make("li", "day-divider");
          divider.dataset.day = day;
          divider.append(make("span", "divider-label"));
          const first = gutter.find(function (note) { return note.parentNode === list; });
          list.insertBefore(divider, first || node);
        }
        const label = dayLabel(created);
        const span = divider.firstElementChild;
        if (span.textContent !== label) span.textContent = label;
      }
      // The unread divider between two messages starts a new group.
      const interrupted = gutter.some(function (note) {
        return note.parentNode === list && !note.classList.contains("day-divider");
      });
      const grouped = Boolean(previous) && !newDay && !interrupted &&
        previous.dataset.author === node.dataset.author &&
        !previous.classList.contains("failed") &&
        Math.abs(created - before) <= GROUP_WINDOW;
      if (node.classList.contains("grouped") !== grouped) node.classList.toggle("grouped", grouped);
      previous = node;
      gutter = [];
      node = next;
    }
    // Nothing follows these any more (their message was deleted or dropped).
    for (const note of gutter) {
      if (note.classList.contains("day-divider") || note.classList.contains("unread-divider")) note.remove();
    }
    const state = hasMore ? "more" : list.querySelector("li.message") ? "complete" : "empty";
    if (list.dataset.history !== state) list.dataset.history = state;
  }

  // The divider goes before the first message of someone else above the read mark.
  // Unforced, it trusts a divider that already leads into a new message: only
  // messages below it arrived since. History pages (above it) force a full look.
  function placeUnreadDivider(force) {
    const current = list.querySelector("li.unread-divider");
    const after = current && current.nextElementSibling;
    if (!force && after && isMessage(after) && !after.classList.contains("mine") && Number(after.dataset.id) > unreadMark) {
      return false;
    }
    let target = null;
    for (const item of list.querySelectorAll("li.message[data-id]")) {
      if (!item.classList.contains("mine") && Number(item.dataset.id) > unreadMark) {
        target = item;
        break;
      }
    }
    if (!target || (current && current.nextElementSibling === target)) return false;
    if (current) current.remove();
    const divider = make("li", "unread-divider");
    divider.append(make("span", "divider-label", "New messages"));
    list.insertBefore(divider, target);
    return true;
  }

  function messageItem(id) {
    return list.querySelector('li.message[data-id="' + Number(id) + '"]');
  }

  // Acknowledged messages are in id order; pending ones stay below them, last.
  function placeConfirmed(element, id) {
    // Nearly always newer than every confirmed message: it goes before the pending ones.
    let node = list.lastElementChild;
    let firstPending = null;
    while (node && (node === element || !isMessage(node) || node.classList.contains("pending"))) {
      if (node !== element && isMessage(node)) firstPending = node;
      node = node.previousElementSibling;
    }
    if (!node || !node.dataset.id || Number(node.dataset.id) < id) {
      if (element.parentNode !== list || element.nextElementSibling !== firstPending) {
        list.insertBefore(element, firstPending);
      }
      return;
    }
    let later = null;
    const items = list.querySelectorAll("li.message[data-id]");
    for (let index = items.length - 1; index >= 0; index -= 1) {
      if (items[index] === element) continue;
      if (Number(items[index].dataset.id) > id) later = items[index];
      else break;
    }
    let before;
    if (later) {
      // Keep the notes that lead into the later message attached to it.
      before = later;
      while (before.previousElementSibling && !isMessage(before.previousElementSibling)) {
        before = before.previousElementSibling;
      }
    } else {
      before = null;
      for (const item of list.querySelectorAll("li.message.pending")) {
        if (item !== element) {
          before = item;
          break;
        }
      }
    }
    if (element.parentNode === list && element.nextElementSibling === before) return;
    list.insertBefore(element, before);
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
    pinned = true;
    jumpButton.hidden = true;
  }

  function setTitle() {
    document.title = (unseen ? "(" + unseen + ") " : "") + roomTitle + " · Chatsite";
  }

  // Scrolling reads the layout, which is costly after each of a replay's
  // thousand messages: it is done once per frame instead.
  let frameWanted = false;
  let stickWanted = false;
  let jumpWanted = false;

  function afterRender(stick, jump) {
    stickWanted = stickWanted || stick;
    jumpWanted = jumpWanted || jump;
    if (frameWanted) return;
    frameWanted = true;
    requestAnimationFrame(function () {
      frameWanted = false;
      if (stickWanted) scrollToBottom();
      else if (jumpWanted) jumpButton.hidden = false;
      stickWanted = jumpWanted = false;
      markRead();
    });
  }

  function onMessage(message) {
    const waiting = message.client_id ? pending.get(message.client_id) : null;
    const shown = messageItem(message.id);
    let element = null;
    if (waiting) {
      pending.delete(message.client_id);
      if (shown) {
        waiting.element.remove();
      } else {
        element = waiting.element;
        element.classList.remove("pending", "failed");
        element.dataset.id = String(message.id);
        setTime(element.querySelector("time"), message.created);
        element.querySelector(".body").textContent = message.body;
        setDelivery(element, "");
        placeConfirmed(element, message.id);
      }
      const retrying = sendError.dataset.code === "rate_limited" || sendError.dataset.code === "unavailable";
      if (retrying && Date.now() >= holdUntil) clearError();
    } else if (shown) {
      // A resend's stored copy, or a replay of what is on screen: show it once.
      return;
    } else {
      element = renderMessage(message, false);
      placeConfirmed(element, message.id);
    }
    lastId = Math.max(lastId, message.id);

    let moved = false;
    if (message.user !== me) {
      if (document.visibilityState !== "visible") {
        moved = placeUnreadDivider();
        unseen += 1;
        setTitle();
      } else if (!list.querySelector("li.unread-divider")) {
        // Read as it arrives: no divider appears above it later.
        unreadMark = Math.max(unreadMark, message.id);
      }
    }
    if (typists.has(message.user)) {
      clearTimeout(typists.get(message.user));
      typists.delete(message.user);
      renderTyping();
    }
    if (moved || !element) regroup();
    else regroup(element);
    afterRender(pinned || message.user === me, message.user !== me);
  }

  function onHistory(frame) {
    loadingHistory = false;
    historyStatus.textContent = "";
    hasMore = Boolean(frame.has_more);
    const height = list.scrollHeight;
    const top = list.scrollTop;
    for (const message of frame.messages) {
      if (messageItem(message.id)) continue;
      placeConfirmed(renderMessage(message, false), message.id);
    }
    if (hole) {
      // The hole shrinks from its top; it is closed once a page reaches below it.
      const lowest = frame.messages.length ? frame.messages[0].id : 0;
      if (!hasMore || lowest <= hole.after + 1) hole = null;
      else hole.before = lowest;
    }
    placeUnreadDivider(true);
    regroup();
    // Keep the reader's place: what they were reading stays where it was.
    list.scrollTop = top + (list.scrollHeight - height);
    // A live region would read out a whole page of history: it is busy meanwhile.
    requestAnimationFrame(function () { list.removeAttribute("aria-busy"); });
    fillScreen();
  }

  // More was missed than the server replays: the newest messages follow. What is
  // on screen is older than the hole, so it goes, and paging back from the
  // replay walks through the hole and on into it again, with nothing missing.
  function onGap(frame) {
    hole = { after: Number(frame.after) || 0, before: Number(frame.before) || 0 };
    for (const item of Array.from(list.querySelectorAll("li.message[data-id]"))) {
      if (Number(item.dataset.id) <= hole.after) item.remove();
    }
    const divider = list.querySelector("li.unread-divider");
    if (divider) divider.remove();
    hasMore = true;
    regroup();
  }

  // Paging goes back from the oldest message shown, or while a hole is open,
  // from the hole's top (a resend acknowledged from below it may be shown above it).
  function oldestId() {
    if (hole) return hole.before;
    const first = list.querySelector("li.message[data-id]");
    return first ? Number(first.dataset.id) : null;
  }

  function loadOlder() {
    if (loadingHistory || !hasMore || !socket || socket.readyState !== WebSocket.OPEN) return;
    const before = oldestId();
    if (before === null) return;
    loadingHistory = true;
    list.setAttribute("aria-busy", "true");
    historyStatus.textContent = "Loading older messages…";
    socket.send(JSON.stringify({ type: "history", before: before, limit: PAGE }));
  }

  // With few messages nothing scrolls, so scrolling up could never ask for more.
  function fillScreen() {
    if (hasMore && list.scrollHeight <= list.clientHeight + 40) loadOlder();
  }

  function markRead() {
    if (document.visibilityState !== "visible" || !lastId || lastId <= lastReadSent) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      lastReadSent = lastId;
      socket.send(JSON.stringify({ type: "read", id: lastId }));
    }
  }

  // --- typing and presence ------------------------------------------------------------

  function showTyping(user) {
    clearTimeout(typists.get(user));
    typists.set(user, setTimeout(function () {
      typists.delete(user);
      renderTyping();
    }, 3000));
    renderTyping();
  }

  function renderTyping() {
    const names = Array.from(typists.keys()).sort();
    typingLine.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" :
      names.length === 2 ? names[0] + " and " + names[1] + " are typing…" :
      "Several people are typing…";
  }

  function onlineItem(name) {
    const item = make("li", "online-item");
    item.dataset.username = name;
    const avatar = make("span", "avatar");
    avatar.setAttribute("aria-hidden", "true");
    paintAvatar(avatar, name);
    item.append(avatar);
    if (name === me) {
      item.append(make("span", "online-name", name), " ", make("span", "you", "(you)"));
    } else {
      const link = make("a", "dm-link", name);
      link.href = "/dm/" + encodeURIComponent(name) + "/";
      link.title = "Message " + name + " directly";
      item.append(link);
    }
    return item;
  }

  // Updated in place, so a keyboard user's focus on a link survives others coming and going.
  function renderOnline() {
    const names = Array.from(online).sort(function (a, b) {
      if (a === me) return -1;
      if (b === me) return 1;
      return a.localeCompare(b);
    });
    const existing = new Map();
    for (const item of Array.from(onlineList.children)) existing.set(item.dataset.username, item);
    names.forEach(function (name, index) {
      let item = existing.get(name);
      if (item) existing.delete(name);
      else item = onlineItem(name);
      const here = onlineList.children[index] || null;
      if (here !== item) onlineList.insertBefore(item, here);
    });
    for (const stale of existing.values()) stale.remove();
    onlineCount.textContent = String(online.size);
    toggleCount.textContent = String(online.size);
  }

  // --- the room's state -----------------------------------------------------------------

  function readOnly() {
    return archived || Boolean(closedReason);
  }

  function applyReadOnly() {
    const locked = readOnly();
    root.dataset.archived = archived ? "true" : "false";
    input.disabled = locked;
    notice.textContent = archived ? "This room is archived" : closedReason;
    updateComposer();
  }

  function applyRoom(room) {
    if (!room) return;
    archived = Boolean(room.archived);
    // A direct room is titled by the other person, not by its stored name.
    if (kind !== "direct" && room.name) {
      roomTitle = room.name;
      titleHeading.textContent = room.name;
      input.placeholder = "Message " + room.name;
      setTitle();
    }
    applyReadOnly();
  }

  // --- errors in words ------------------------------------------------------------------

  function clearError() {
    clearInterval(errorTimer);
    sendError.textContent = "";
    delete sendError.dataset.code;
  }

  function showError(code, text) {
    clearInterval(errorTimer);
    sendError.dataset.code = code;
    sendError.textContent = text;
  }

  // "Wait 3 s", counting down, so the reader knows when the message will go.
  function showWait(seconds, prefix) {
    const until = Date.now() + seconds * 1000;
    function tick() {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(errorTimer);
        sendError.textContent = prefix + " Sending now…";
        return;
      }
      sendError.textContent = prefix + " Sending again in " + left + " s.";
    }
    showError("rate_limited", "");
    tick();
    errorTimer = setInterval(tick, 500);
  }

  function mutedWords(detail) {
    const match = /until (\S+)/.exec(detail || "");
    const until = match ? new Date(match[1]) : null;
    if (until && !isNaN(until.getTime())) {
      return "You are muted in this room until " +
        until.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) + ".";
    }
    return "You are muted in this room.";
  }

  const WORDS = {
    too_long: "That message is too long: " + MAX_LENGTH + " characters at most.",
    empty: "That message is empty: type something first.",
    room_archived: "This room is archived: you can read it, but no longer post in it.",
    forbidden: "You are not allowed to do that.",
    not_found: "That message no longer exists.",
    bad_request: "The server could not read that. Reload the page and try again.",
    unavailable: "The server cannot take messages right now. Try again in a moment.",
  };

  function onError(frame) {
    const waiting = frame.client_id ? pending.get(frame.client_id) : null;
    const clientId = frame.client_id;
    if (waiting && RETRYABLE.has(frame.code)) {
      const seconds = frame.code === "rate_limited" ? Math.max(Number(frame.retry_after) || 1, 0.2) : 2;
      hold(seconds);
      if (frame.code === "rate_limited") showWait((holdUntil - Date.now()) / 1000, "You are sending messages too fast.");
      else showError("unavailable", "The server could not save your message. Trying again…");
      return;
    }
    if (waiting) {
      pending.delete(clientId);
      waiting.element.classList.remove("pending");
      waiting.element.classList.add("failed");
      setDelivery(waiting.element, "Not sent");
      regroup();
    }
    if (frame.code === "room_archived" && !archived) {
      archived = true;
      applyReadOnly();
    }
    let text;
    if (frame.code === "muted") text = mutedWords(frame.detail);
    else if (frame.code === "rate_limited") {
      text = "You are sending messages too fast. Wait " + Math.ceil(Number(frame.retry_after) || 1) + " s.";
    } else text = WORDS[frame.code] || frame.detail || "Something went wrong (" + frame.code + ").";
    showError(frame.code, text);
  }

  // --- the connection ----------------------------------------------------------------------

  function setStatus(text, state) {
    clearTimeout(backOnlineTimer);
    statusLine.textContent = text;
    statusLine.dataset.state = state;
  }

  function onWelcome(frame) {
    attempt = 0;
    if (troubled) {
      setStatus("Back online", "online");
      // Said briefly, then out of the way.
      backOnlineTimer = setTimeout(function () { statusLine.textContent = ""; }, 3000);
    } else {
      setStatus("", "online");
    }
    troubled = false;
    applyRoom(frame.room);
    online.clear();
    for (const name of frame.online || []) online.add(name);
    renderOnline();
    for (const clientId of pending.keys()) sendPending(clientId);
    markRead();
    fillScreen();
  }

  function onFrame(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "welcome":
        onWelcome(frame);
        break;
      case "message":
        onMessage(frame);
        break;
      case "history":
        onHistory(frame);
        break;
      case "gap":
        onGap(frame);
        break;
      case "presence":
        for (const name of frame.joined || []) online.add(name);
        for (const name of frame.left || []) {
          online.delete(name);
          if (typists.has(name)) {
            clearTimeout(typists.get(name));
            typists.delete(name);
            renderTyping();
          }
        }
        renderOnline();
        break;
      case "typing":
        if (frame.user !== me) showTyping(frame.user);
        break;
      case "room":
        applyRoom(frame.room);
        break;
      case "message.edited": {
        const item = messageItem(frame.id);
        if (item) {
          item.querySelector(".body").textContent = frame.body;
          if (!item.querySelector(".edited")) item.querySelector(".message-meta").append(" ", editedMark());
        }
        break;
      }
      case "message.deleted": {
        const item = messageItem(frame.id);
        if (item) {
          item.remove();
          regroup();
        }
        break;
      }
      case "error":
        onError(frame);
        break;
      case "pong":
        clearTimeout(pongDeadline);
        break;
    }
  }

  // One wait for the whole queue, then everything unacknowledged goes again in
  // the order it was written: messages never overtake each other on a retry.
  function hold(seconds) {
    holdUntil = Math.max(holdUntil, Date.now() + seconds * 1000);
    clearTimeout(holdTimer);
    holdTimer = setTimeout(function () {
      holdUntil = 0;
      for (const clientId of pending.keys()) sendPending(clientId);
    }, holdUntil - Date.now());
  }

  function sendPending(clientId) {
    const waiting = pending.get(clientId);
    if (!waiting || Date.now() < holdUntil || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "message.send", body: waiting.body, client_id: clientId }));
  }

  // A socket that does not answer a ping in time is treated as gone, without
  // waiting for a close handshake that a dead network never completes.
  function checkAlive() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const current = socket;
    current.send('{"type":"ping"}');
    clearTimeout(pongDeadline);
    pongDeadline = setTimeout(function () {
      if (current !== socket) return;
      socket = null;
      try { current.close(); } catch (error) { /* already closing */ }
      onClose(CLOSE_NO_FRAME);
    }, 10000);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (closedReason) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/ws/rooms/" + encodeURIComponent(slug) + "/?after=" + lastId;
    if (attempt) setStatus("Reconnecting…", "reconnecting");
    else setStatus("Connecting…", "connecting");
    const current = new WebSocket(url);
    socket = current;
    current.addEventListener("message", function (event) {
      if (current === socket) onFrame(event);
    });
    current.addEventListener("open", function () {
      if (current !== socket) return;
      clearInterval(pingTimer);
      pingTimer = setInterval(checkAlive, 25000);
    });
    current.addEventListener("close", function (event) {
      if (current !== socket) return;
      socket = null;
      onClose(event.code);
    });
  }

  function onClose(code) {
    clearInterval(pingTimer);
    clearTimeout(pongDeadline);
    clearTimeout(reconnectTimer);
    if (loadingHistory) {
      // The answer died with the socket: ask again once back.
      loadingHistory = false;
      historyStatus.textContent = "";
      list.removeAttribute("aria-busy");
    }
    for (const timer of typists.values()) clearTimeout(timer);
    typists.clear();
    renderTyping();
    if (code === CLOSE.UNAUTHENTICATED) {
      setStatus("Signed out", "offline");
      location.assign("/accounts/login/?next=" + encodeURIComponent(location.pathname));
      return;
    }
    if (code === CLOSE.FORBIDDEN || code === CLOSE.NOT_FOUND) {
      closedReason = code === CLOSE.NOT_FOUND ?
        "This room is no longer available to you." :
        "Your account can no longer chat.";
      setStatus("Disconnected", "offline");
      online.clear();
      renderOnline();
      applyReadOnly();
      return;
    }
    if (code === CLOSE.BAD_QUERY) lastId = 0;
    // Everything else is worth another try, resuming after the last id: a
    // restart (SERVICE_RESTART), a busy server (TRY_AGAIN_LATER), a fault on
    // the server's side (INTERNAL_ERROR), a network that went away.
    troubled = true;
    attempt += 1;
    // Exponential backoff with full jitter, capped at 30 s; flooding waits the full 30 s.
    const cap = Math.min(30000, 500 * Math.pow(2, attempt));
    const delay = code === CLOSE.FLOODING ? 30000 : Math.random() * cap;
    setStatus("Reconnecting…", "reconnecting");
    reconnectTimer = setTimeout(connect, delay);
  }

  // --- the composer ------------------------------------------------------------------------

  function updateComposer() {
    const length = codePoints(input.value.trim());
    const left = MAX_LENGTH - length;
    let text = "";
    if (length >= COUNT_FROM) {
      text = left >= 0 ? plural(left, "character") + " left" : plural(-left, "character") + " over the limit";
    }
    if (charCount.textContent !== text) charCount.textContent = text;
    charCount.classList.toggle("over", left < 0);
    if (left < 0) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    sendButton.disabled = readOnly() || left < 0;
  }

  // The box grows with its text up to a limit set in the style sheet, then scrolls.
  function autoSize() {
    input.style.height = "auto";
    input.style.height = input.scrollHeight + "px";
  }

  function submitMessage() {
    if (readOnly()) return;
    const body = input.value.trim();
    if (!body) {
      input.focus();
      return;
    }
    if (codePoints(body) > MAX_LENGTH) {
      showError("too_long", WORDS.too_long);
      return;
    }
    clearError();
    const clientId = newClientId();
    const element = renderMessage({ user: me, body: body, created: new Date().toISOString() }, true);
    list.append(element);
    pending.set(clientId, { body: body, element: element });
    input.value = "";
    updateComposer();
    autoSize();
    regroup();
    scrollToBottom();
    sendPending(clientId);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitMessage();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (!sendButton.disabled) submitMessage();
    }
  });

  input.addEventListener("input", function () {
    updateComposer();
    autoSize();
    const now = Date.now();
    if (input.value.trim() && now - lastTypingSent > 2000 && socket && socket.readyState === WebSocket.OPEN) {
      lastTypingSent = now;
      socket.send('{"type":"typing"}');
    }
  });

  // --- scrolling, visibility, the online panel ---------------------------------------------

  list.addEventListener("scroll", function () {
    pinned = nearBottom();
    if (pinned) jumpButton.hidden = true;
    if (list.scrollTop < 150) loadOlder();
  }, { passive: true });

  jumpButton.addEventListener("click", function () {
    scrollToBottom();
    input.focus();
  });

  // The list shrinks when the box grows or a phone's keyboard opens: stay at the newest.
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (pinned) list.scrollTop = list.scrollHeight;
    }).observe(list);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      unseen = 0;
      setTitle();
      markRead();
      checkAlive();
    } else {
      // What was on screen has been seen; what comes next gets the divider.
      unreadMark = Math.max(unreadMark, lastId);
    }
  });

  window.addEventListener("online", function () {
    if (!socket) connect();
    else checkAlive();
  });
  window.addEventListener("offline", checkAlive);

  function setPanel(open) {
    root.dataset.panel = open ? "open" : "closed";
    panelToggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  panelToggle.addEventListener("click", function () {
    const open = root.dataset.panel !== "open";
    setPanel(open);
    if (open) panelTitle.focus();
  });
  panelClose.addEventListener("click", function () {
    setPanel(false);
    panelToggle.focus();
  });
  // On a phone the panel covers the conversation: a tap beside it closes it.
  root.querySelector(".timeline").addEventListener("click", function () {
    if (root.dataset.panel === "open") setPanel(false);
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && root.dataset.panel === "open") {
      setPanel(false);
      panelToggle.focus();
    }
  });

  // --- start -------------------------------------------------------------------------------

  list.setAttribute("aria-busy", "true");
  for (const item of list.querySelectorAll("li.message")) {
    const time = item.querySelector("time[datetime]");
    if (time) setTime(time, time.dateTime);
    const avatar = item.querySelector(".avatar");
    if (avatar) paintAvatar(avatar, item.dataset.author || "");
  }
  placeUnreadDivider(true);
  regroup();
  updateComposer();
  autoSize();
  const divider = list.querySelector("li.unread-divider");
  if (divider && list.scrollHeight - divider.offsetTop > list.clientHeight) {
    // More is new than fits: start at the first new message (with its day), not the last.
    const above = divider.previousElementSibling;
    const anchor = above && above.classList.contains("day-divider") ? above : divider;
    list.scrollTop = anchor.offsetTop - 12;
    pinned = nearBottom();
  } else {
    scrollToBottom();
  }
  requestAnimationFrame(function () { list.removeAttribute("aria-busy"); });
  connect();
})();

// The room page's client (PROTOCOL.md). Bodies are always set as text, never HTML.
// It resumes with after=<last id> on every reconnect, and resends what was not
// acknowledged with the same client_id, so nothing is lost or doubled.
"use strict";

(function () {
  const root = document.getElementById("room");
  if (!root) return;

  const slug = root.dataset.slug;
  const me = root.dataset.username;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("body");
  const statusLine = document.getElementById("connection");
  const sendError = document.getElementById("send-error");
  const typingLine = document.getElementById("typing");
  const onlineList = document.getElementById("online");
  const onlineCount = document.getElementById("online-count");
  const online = new Set();

  let lastId = Number(root.dataset.lastId) || 0;
  let socket = null;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let pongDeadline = null;
  let lastTypingSent = 0;
  let lastReadSent = 0;
  let loadingHistory = false;
  let hasMore = root.dataset.hasMore === "true";
  const pending = new Map(); // client_id -> {body, element}
  const typists = new Map(); // username -> timer

  const RETRYABLE = new Set(["unavailable", "rate_limited"]);

  function setStatus(text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessage(message, pendingState) {
    const item = document.createElement("li");
    item.className = "message" + (message.user === me ? " mine" : "");
    if (message.id) item.dataset.id = String(message.id);
    if (pendingState) item.classList.add(pendingState);
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.user;
    const time = document.createElement("time");
    if (message.created) {
      time.dateTime = message.created;
      time.textContent = formatTime(message.created);
    }
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = message.body;
    item.append(author, time, body);
    if (message.edited) {
      const edited = document.createElement("span");
      edited.className = "edited";
      edited.textContent = "(edited)";
      item.append(edited);
    }
    return item;
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
  }

  function onMessage(message) {
    const stick = nearBottom() || message.user === me;
    const waiting = message.client_id ? pending.get(message.client_id) : null;
    if (waiting) {
      pending.delete(message.client_id);
      waiting.element.remove();
    }
    if (message.id <= lastId) {
      // A resend's stored copy, or something already shown: show it once.
      if (list.querySelector('[data-id="' + message.id + '"]')) return;
    }
    list.append(renderMessage(message));
    lastId = Math.max(lastId, message.id);
    if (typists.has(message.user)) {
      clearTimeout(typists.get(message.user));
      typists.delete(message.user);
      renderTyping();
    }
    if (stick) scrollToBottom();
    markRead();
  }

  function onHistory(frame) {
    loadingHistory = false;
    hasMore = frame.has_more;
    const before = list.scrollHeight;
    const first = list.firstElementChild;
    for (const message of frame.messages) {
      if (list.querySelector('[data-id="' + message.id + '"]')) continue;
      list.insertBefore(renderMessage(message), first);
    }
    list.scrollTop += list.scrollHeight - before;
  }

  function oldestId() {
    const first = list.querySelector("[data-id]");
    return first ? Number(first.dataset.id) : null;
  }

  function loadOlder() {
    if (loadingHistory || !hasMore || !socket || socket.readyState !== WebSocket.OPEN) return;
    const before = oldestId();
    if (before === null) return;
    loadingHistory = true;
    socket.send(JSON.stringify({ type: "history", before: before, limit: 50 }));
  }

  function markRead() {
    if (document.visibilityState !== "visible" || !lastId || lastId <= lastReadSent) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      lastReadSent = lastId;
      socket.send(JSON.stringify({ type: "read", id: lastId }));
    }
  }

  function showTyping(user) {
    clearTimeout(typists.get(user));
    typists.set(user, setTimeout(function () {
      typists.delete(user);
      renderTyping();
    }, 3000));
    renderTyping();
  }

  function renderTyping() {
    const names = Array.from(typists.keys());
    typingLine.textContent = names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" : names.join(", ") + " are typing…";
  }

  function renderOnline() {
    onlineList.replaceChildren();
    for (const name of Array.from(online).sort()) {
      const item = document.createElement("li");
      if (name === me) {
        item.textContent = name + " (you)";
      } else {
        const link = document.createElement("a");
        link.href = "/dm/" + encodeURIComponent(name) + "/";
        link.textContent = name;
        link.title = "Message " + name + " directly";
        item.append(link);
      }
      onlineList.append(item);
    }
    onlineCount.textContent = "(" + online.size + ")";
  }

  function onError(frame) {
    const waiting = frame.client_id ? pending.get(frame.client_id) : null;
    if (waiting && RETRYABLE.has(frame.code)) {
      const delay = (frame.retry_after || 2) * 1000;
      setTimeout(function () { sendPending(frame.client_id); }, delay);
      sendError.textContent = frame.code === "rate_limited" ?
        "Slow down: sending again in " + Math.ceil(delay / 1000) + " s." :
        "The server is busy; retrying…";
      return;
    }
    if (waiting) {
      pending.delete(frame.client_id);
      waiting.element.classList.replace("sending", "failed");
    }
    const words = {
      too_long: "That message is too long (4000 characters at most).",
      empty: "Type something first.",
      room_archived: "This room is archived: it is read-only.",
      muted: "You are muted in this room.",
      forbidden: "You are not allowed to do that.",
      not_found: "That message no longer exists.",
    };
    sendError.textContent = words[frame.code] || frame.detail || frame.code;
  }

  function onFrame(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    switch (frame.type) {
      case "welcome":
        attempt = 0;
        setStatus("Connected", "open");
        online.clear();
        for (const name of frame.online) online.add(name);
        renderOnline();
        for (const clientId of pending.keys()) sendPending(clientId);
        markRead();
        break;
      case "message":
        onMessage(frame);
        break;
      case "history":
        onHistory(frame);
        break;
      case "gap": {
        const note = document.createElement("li");
        note.className = "gap";
        note.textContent = "Some older messages were skipped; scroll up to load them.";
        list.append(note);
        hasMore = true;
        break;
      }
      case "presence":
        for (const name of frame.joined || []) online.add(name);
        for (const name of frame.left || []) online.delete(name);
        renderOnline();
        break;
      case "typing":
        showTyping(frame.user);
        break;
      case "message.edited": {
        const item = list.querySelector('[data-id="' + frame.id + '"]');
        if (item) {
          item.querySelector(".body").textContent = frame.body;
          if (!item.querySelector(".edited")) {
            const edited = document.createElement("span");
            edited.className = "edited";
            edited.textContent = "(edited)";
            item.append(edited);
          }
        }
        break;
      }
      case "message.deleted": {
        const item = list.querySelector('[data-id="' + frame.id + '"]');
        if (item) item.remove();
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

  function sendPending(clientId) {
    const waiting = pending.get(clientId);
    if (!waiting || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "message.send", body: waiting.body, client_id: clientId }));
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/ws/rooms/" + encodeURIComponent(slug) + "/?after=" + lastId;
    setStatus(attempt ? "Reconnecting…" : "Connecting…", "connecting");
    socket = new WebSocket(url);
    socket.addEventListener("message", onFrame);
    socket.addEventListener("open", function () {
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        if (socket.readyState !== WebSocket.OPEN) return;
        socket.send('{"type":"ping"}');
        clearTimeout(pongDeadline);
        pongDeadline = setTimeout(function () { socket.close(); }, 10000);
      }, 25000);
    });
    socket.addEventListener("close", function (event) {
      clearInterval(pingTimer);
      clearTimeout(pongDeadline);
      if (event.code === 4401) {
        setStatus("Your session ended. Log in again.", "closed");
        location.assign("/accounts/login/?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (event.code === 4403 || event.code === 4404) {
        setStatus(event.code === 4404 ? "This room does not exist." : "Your account cannot chat.", "closed");
        return;
      }
      if (event.code === 4400) lastId = 0;
      attempt += 1;
      // Exponential backoff with full jitter, capped at 30 s.
      const cap = Math.min(30000, 500 * Math.pow(2, attempt));
      const delay = event.code === 4429 ? 30000 : Math.random() * cap;
      setStatus("Reconnecting…", "reconnecting");
      reconnectTimer = setTimeout(connect, delay);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const body = input.value.trim();
    sendError.textContent = "";
    if (!body) return;
    const clientId = newClientId();
    const element = renderMessage({ user: me, body: body, created: new Date().toISOString() }, "sending");
    list.append(element);
    scrollToBottom();
    pending.set(clientId, { body: body, element: element });
    input.value = "";
    sendPending(clientId);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  input.addEventListener("input", function () {
    const now = Date.now();
    if (now - lastTypingSent > 2000 && socket && socket.readyState === WebSocket.OPEN) {
      lastTypingSent = now;
      socket.send('{"type":"typing"}');
    }
  });

  list.addEventListener("scroll", function () {
    if (list.scrollTop < 40) loadOlder();
  });
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("online", function () {
    if (!socket || socket.readyState === WebSocket.CLOSED) connect();
  });

  for (const time of list.querySelectorAll("time[datetime]")) {
    time.textContent = formatTime(time.dateTime);
  }
  scrollToBottom();
  connect();
})();

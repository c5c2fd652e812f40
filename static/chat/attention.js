// Every signed-in page's own socket, /ws/me/ (docs/protocol.md, The page's own
// socket): the unread and mention counts of every room, live, for the tab
// title and the lobby; and notifications of mentions and direct messages while
// the tab is hidden, once the reader has allowed them with a click.

const PING_EVERY = 25000;
const CLOSE = JSON.parse(document.body.dataset.closeCodes);
const listeners = new Set();
const rooms = new Map(); // slug -> the room's entry, as the server counts it
let baseTitle = document.title.replace(/^\(\d+\) /, "");
let socket = null;
let attempt = 0;
let pingTimer = null;

// The room whose page this is: its messages are read as they arrive while it is in view.
function currentRoom() {
  const root = document.getElementById("room");
  return root ? root.dataset.slug : null;
}

export function setBaseTitle(text) {
  baseTitle = text;
  showTitle();
}

// f(rooms) on the snapshot and every change: an array of entries in the server's order.
export function onRooms(f) {
  listeners.add(f);
  if (rooms.size) f(Array.from(rooms.values()));
}

function showTitle() {
  const here = document.visibilityState === "visible" ? currentRoom() : null;
  let unread = 0;
  for (const room of rooms.values()) if (room.slug !== here) unread += Number(room.unread) || 0;
  const title = (unread ? "(" + unread + ") " : "") + baseTitle;
  if (document.title !== title) document.title = title;
}

function changed() {
  showTitle();
  const list = Array.from(rooms.values());
  for (const f of listeners) f(list);
}

function notify(frame) {
  if (document.visibilityState === "visible" || !("Notification" in window)) return;
  if (Notification.permission !== "granted") return;
  const title = frame.kind === "direct" ? frame.user : frame.user + " in " + frame.title;
  const shown = new Notification(title, {
    body: frame.body,
    tag: frame.room + ":" + frame.id, // every page of the reader's shows it once
  });
  shown.addEventListener("click", function () {
    window.focus();
    if (currentRoom() !== frame.room) location.assign("/rooms/" + encodeURIComponent(frame.room) + "/");
    shown.close();
  });
}

function onFrame(frame) {
  switch (frame.type) {
    case "rooms":
      rooms.clear();
      for (const room of frame.rooms) rooms.set(room.slug, room);
      changed();
      break;
    case "room":
      rooms.set(frame.room.slug, frame.room);
      changed();
      break;
    case "room.removed":
      rooms.delete(frame.slug);
      changed();
      break;
    case "notify":
      notify(frame);
      break;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const current = new WebSocket(scheme + "//" + location.host + "/ws/me/");
  socket = current;
  current.addEventListener("open", function () {
    attempt = 0;
    clearInterval(pingTimer);
    pingTimer = setInterval(function () {
      if (current.readyState === WebSocket.OPEN) current.send('{"type":"ping"}');
    }, PING_EVERY);
  });
  current.addEventListener("message", function (event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (frame && typeof frame === "object") onFrame(frame);
  });
  current.addEventListener("close", function (event) {
    if (current !== socket) return;
    clearInterval(pingTimer);
    // Signed out, or no such user any more: the page's own socket stops. Anything
    // else reconnects, and the snapshot that follows makes the counts exact again.
    if (event.code === CLOSE.UNAUTHENTICATED || event.code === CLOSE.FORBIDDEN) return;
    attempt += 1;
    setTimeout(connect, Math.random() * Math.min(30000, 500 * Math.pow(2, attempt)));
  });
}

// Asked only after a click: browsers rightly ignore a page that asks on load.
function offerNotifications() {
  const button = document.getElementById("notify-permission");
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", function () {
    Notification.requestPermission().then(function () {
      button.hidden = Notification.permission !== "default";
    });
  });
}

document.addEventListener("visibilitychange", showTitle);
offerNotifications();
connect();

// A room's live view: its state, the newest published message, and live
// comments (danmaku) flying across a stage drawn on a canvas. Comments are
// drawn as text with fillText and listed for screen readers as text nodes:
// nothing from them is ever parsed as HTML. Nothing comes from a CDN.

import { Connection } from "./connection.js";
import { make } from "./dom.js";
import { StateView } from "./state.js";

const root = document.getElementById("live");
const byId = (id) => document.getElementById(id);
const CLOSE = JSON.parse(document.body.dataset.closeCodes);
const canvas = byId("stage");
const context = canvas.getContext("2d");
const stateView = new StateView(byId("room-state"));
const started = performance.now();
const LANES = 9;
const SPEED = 220; // pixels a second
const flying = []; // {text, x, lane, width, hue}
const online = new Set(); // who is online, in a room that lists them instead of counting
let lastId = 0;

function mediaTime() {
  // The stage's own clock stands in for a video's current time.
  return Math.round((performance.now() - started) / 100) / 10;
}

function launch(comment) {
  context.font = "600 34px system-ui, sans-serif";
  const text = comment.user + ": " + comment.body;
  const width = context.measureText(text).width;
  // The lane whose last comment is furthest along, so that they do not overlap.
  const tails = new Array(LANES).fill(-Infinity);
  for (const item of flying) tails[item.lane] = Math.max(tails[item.lane], item.x + item.width);
  let lane = 0;
  for (let index = 1; index < LANES; index += 1) if (tails[index] < tails[lane]) lane = index;
  flying.push({ text: text, x: Math.max(canvas.width, tails[lane] + 40), lane: lane, width: width, hue: (comment.user.length * 47) % 360 });
  const log = byId("comment-log");
  log.append(make("li", "", text));
  while (log.childElementCount > 20) log.firstElementChild.remove();
}

let previous = performance.now();
function draw(now) {
  const seconds = Math.min(0.1, (now - previous) / 1000);
  previous = now;
  const gradient = context.createLinearGradient(0, 0, canvas.width, canvas.height);
  const shift = (now / 80) % 360;
  gradient.addColorStop(0, "hsl(" + (210 + Math.sin(shift / 57) * 20) + ", 45%, 18%)");
  gradient.addColorStop(1, "hsl(" + (250 + Math.cos(shift / 43) * 20) + ", 40%, 10%)");
  context.fillStyle = gradient;
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.font = "600 34px system-ui, sans-serif";
  context.textBaseline = "middle";
  for (let index = flying.length - 1; index >= 0; index -= 1) {
    const item = flying[index];
    item.x -= SPEED * seconds;
    if (item.x + item.width < 0) {
      flying.splice(index, 1);
      continue;
    }
    const y = 60 + item.lane * ((canvas.height - 120) / (LANES - 1));
    context.lineWidth = 5;
    context.strokeStyle = "rgba(0, 0, 0, 0.65)";
    context.strokeText(item.text, item.x, y);
    context.fillStyle = "hsl(" + item.hue + ", 90%, 85%)";
    context.fillText(item.text, item.x, y);
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);

function showLatest(message) {
  lastId = Math.max(lastId, message.id);
  byId("stage-latest").textContent = message.user + ": " + message.body;
}

const connection = new Connection({
  slug: root.dataset.slug,
  close: CLOSE,
  lastId: () => lastId,
  onFrame: function (frame) {
    switch (frame.type) {
      case "welcome":
        lastId = Math.max(lastId, Number(frame.last_id) || 0);
        if (frame.room.kind === "broadcast") {
          byId("live-viewers").textContent = String(frame.viewers);
          stateView.update(frame.state, frame.state_version);
        } else {
          online.clear();
          for (const name of frame.online || []) online.add(name);
          byId("live-viewers").textContent = String(online.size);
        }
        break;
      case "message":
        showLatest(frame);
        break;
      case "messages":
        for (const message of frame.messages) showLatest(message);
        break;
      case "viewers":
        byId("live-viewers").textContent = String(frame.count);
        break;
      case "presence":
        for (const name of frame.joined || []) online.add(name);
        for (const name of frame.left || []) online.delete(name);
        byId("live-viewers").textContent = String(online.size);
        break;
      case "room.state":
        stateView.update(frame.state, frame.version);
        break;
      case "comment":
        launch(frame);
        break;
      case "error": {
        const line = byId("comment-error");
        if (line) line.textContent = frame.detail || frame.code;
        break;
      }
    }
  },
  onStatus: function (text, state) {
    const line = byId("connection");
    line.textContent = text;
    line.dataset.state = state;
  },
  onLost: function () {},
  onEnd: function (code) {
    const line = byId("connection");
    line.textContent = code === CLOSE.UNAUTHENTICATED ? "Log in to watch" : "Not available";
    line.dataset.state = "offline";
  },
});

const form = byId("comment-form");
if (form) {
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const input = byId("comment-body");
    const body = input.value.trim();
    if (!body) return;
    byId("comment-error").textContent = "";
    if (connection.send({ type: "comment.send", body: body, time: mediaTime() })) input.value = "";
    else byId("comment-error").textContent = "Not connected: try again in a moment.";
  });
}

connection.connect();

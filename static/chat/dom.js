// Small DOM helpers the room's modules share. Text only ever reaches the page
// through textContent: nothing here parses HTML.

export function make(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

// The server counts a body's code points, not UTF-16 units.
export function codePoints(text) {
  return Array.from(text).length;
}

export function plural(count, word) {
  return count + " " + word + (count === 1 ? "" : "s");
}

const AVATAR_COLORS = 10;

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
export function avatarColor(name) {
  return String(hash(name) % AVATAR_COLORS);
}

export function paintAvatar(element, name) {
  element.textContent = initials(name);
  element.dataset.color = avatarColor(name);
}

export function avatar(name) {
  const element = make("span", "avatar");
  element.setAttribute("aria-hidden", "true");
  paintAvatar(element, name);
  return element;
}

export function setTime(time, iso) {
  const date = new Date(iso);
  if (isNaN(date.getTime())) return;
  time.dateTime = iso;
  time.textContent = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  time.title = date.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
}

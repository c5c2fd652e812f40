// The lobby's client: keeps the room lists live from the page's own socket
// (attention.js, /ws/me/), with no polling, updating rooms in place so that
// focus and scroll stay put. "Your rooms" holds the rooms the reader is in
// (a role), direct conversations and broadcast rooms; "Browse rooms" the
// public rooms they may join, as chat.web.views.lobby_sides splits them. Names and
// descriptions are set as text, never HTML.

import { onRooms } from "./attention.js";
import { avatarColor, make } from "./dom.js";

(function () {
  const list = document.getElementById("room-list");
  const browseList = document.getElementById("browse-list");
  if (!list || !browseList) return;

  function csrfToken() {
    const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function isMine(room) {
    return Boolean(room.role) || room.kind === "direct" || room.kind === "broadcast";
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  // A direct room shows the other person's initial, in the color the room page gives them.
  function paintIcon(icon, room) {
    if (room.kind === "direct") {
      setText(icon, (Array.from(room.name)[0] || "?").toUpperCase());
      icon.dataset.color = avatarColor(room.name);
    } else {
      setText(icon, "#");
      delete icon.dataset.color;
    }
  }

  function build(room) {
    const item = make("li", "room-item");
    item.dataset.slug = room.slug;
    const link = make("a", "room-link");
    link.href = "/rooms/" + encodeURIComponent(room.slug) + "/";
    const icon = make("span", "room-icon");
    icon.setAttribute("aria-hidden", "true");
    const text = make("span", "room-text");
    const titleLine = make("span", "room-title-line");
    titleLine.append(make("span", "room-name"));
    text.append(titleLine, make("span", "room-description"));
    const meta = make("span", "room-meta");
    const onlineCount = make("span", "online");
    meta.append(onlineCount);
    link.append(icon, text, meta);
    item.append(link);
    update(item, room);
    return item;
  }

  // A public room one is not in gets a Join button: a form, as the server renders it.
  function setJoin(item, room) {
    const wanted = !isMine(room) && !room.archived;
    let form = item.querySelector(".join-form");
    if (!wanted) {
      if (form) form.remove();
      return;
    }
    if (form) return;
    form = make("form", "join-form");
    form.method = "post";
    form.action = "/rooms/" + encodeURIComponent(room.slug) + "/join/";
    const token = make("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    const button = make("button", "join-button", "Join");
    button.type = "submit";
    button.setAttribute("aria-label", "Join " + room.name);
    form.append(token, button);
    item.append(form);
  }

  // The badges after a room's name: its kind (unless public), then "archived".
  function setBadges(titleLine, room) {
    const wanted = [];
    if (room.kind !== "public") wanted.push(["badge-kind", room.kind]);
    if (room.archived) wanted.push(["badge-archived", "archived"]);
    if (room.role === "owner") wanted.push(["badge-owner", "owner"]);
    const current = Array.from(titleLine.querySelectorAll(".badge"));
    const same = current.length === wanted.length && current.every(function (badge, index) {
      return badge.classList.contains(wanted[index][0]) && badge.textContent === wanted[index][1];
    });
    if (same) return;
    const name = titleLine.querySelector(".room-name");
    titleLine.replaceChildren(name);
    for (const badge of wanted) titleLine.append(" ", make("span", "badge " + badge[0], badge[1]));
  }

  function update(item, room) {
    item.dataset.kind = room.kind;
    if (room.role) item.dataset.role = room.role;
    else delete item.dataset.role;
    setJoin(item, room);
    paintIcon(item.querySelector(".room-icon"), room);
    setText(item.querySelector(".room-name"), room.name);
    setBadges(item.querySelector(".room-title-line"), room);
    setText(item.querySelector(".room-description"), room.description || "");

    const onlineCount = item.querySelector(".online");
    const online = Number(room.online) || 0;
    onlineCount.dataset.online = String(online);
    setText(onlineCount, online + " online");

    const meta = item.querySelector(".room-meta");
    const mentions = Number(room.mentions) || 0;
    setCount(meta, "mentions", mentions, "@" + mentions, mentions + " mentioning you");
    const unread = Number(room.unread) || 0;
    setCount(meta, "unread", unread, String(unread), unread + " unread");
  }

  // A badge shown while its count is above zero; mentions come before unread.
  function setCount(meta, className, count, text, label) {
    let badge = meta.querySelector("." + className);
    if (!count) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = make("span", className);
      if (className === "mentions") meta.insertBefore(badge, meta.querySelector(".unread"));
      else meta.append(badge);
    }
    setText(badge, text);
    badge.setAttribute("aria-label", label);
  }

  function renderList(target, rooms, existing, emptyText) {
    const empty = target.querySelector("li.room-empty");
    if (rooms.length && empty) empty.remove();
    rooms.forEach(function (room, index) {
      let item = existing.get(room.slug);
      if (item) {
        existing.delete(room.slug);
        update(item, room);
      } else {
        item = build(room);
      }
      const here = target.children[index] || null;
      if (here !== item) target.insertBefore(item, here);
    });
    if (!rooms.length && !target.querySelector("li.room-empty")) {
      target.append(make("li", "room-empty", emptyText));
    }
  }

  function render(rooms) {
    // A room moving between the lists (joined, left) keeps its element.
    const existing = new Map();
    for (const item of document.querySelectorAll(".lobby li.room-item")) existing.set(item.dataset.slug, item);
    renderList(list, rooms.filter(isMine), existing, "You are in no room yet: join one below, or make one.");
    renderList(browseList, rooms.filter((room) => !isMine(room)), existing, "No other public rooms.");
    for (const gone of existing.values()) gone.remove();
  }

  for (const item of document.querySelectorAll(".lobby li.room-item")) {
    const name = item.querySelector(".room-name");
    paintIcon(item.querySelector(".room-icon"), { kind: item.dataset.kind, name: name ? name.textContent : "" });
  }
  onRooms(render);
})();

// Who is online in the room, who is typing, and the panel that lists them.
// The server sends `presence` news in the order Redis decided it (docs/protocol.md).

import { avatar, make } from "./dom.js";

const TYPING_SHOWN_FOR = 3000;

export class Presence {
  constructor({ root, me, list, count, toggle, toggleCount, panel, panelTitle, panelClose, typingLine }) {
    this.root = root;
    this.me = me;
    this.list = list;
    this.count = count;
    this.toggle = toggle;
    this.toggleCount = toggleCount;
    this.typingLine = typingLine;
    this.online = new Set();
    this.typists = new Map(); // username -> timer

    toggle.addEventListener("click", () => {
      const open = root.dataset.panel !== "open";
      this.setPanel(open);
      if (open) panelTitle.focus();
    });
    panelClose.addEventListener("click", () => {
      this.setPanel(false);
      toggle.focus();
    });
    // On a phone the panel covers the conversation: a tap beside it closes it.
    root.querySelector(".timeline").addEventListener("click", () => {
      if (root.dataset.panel === "open") this.setPanel(false);
    });
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && root.dataset.panel === "open") {
        this.setPanel(false);
        toggle.focus();
      }
    });
  }

  setPanel(open) {
    this.root.dataset.panel = open ? "open" : "closed";
    this.toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  // --- online ----------------------------------------------------------------------------

  welcome(names) {
    this.online.clear();
    for (const name of names || []) this.online.add(name);
    this.render();
  }

  news(frame) {
    for (const name of frame.joined || []) this.online.add(name);
    for (const name of frame.left || []) {
      this.online.delete(name);
      this.stoppedTyping(name);
    }
    this.render();
  }

  clear() {
    this.online.clear();
    this.render();
  }

  // A broadcast room counts its audience instead of listing it.
  viewers(count) {
    this.count.textContent = String(count);
    this.toggleCount.textContent = String(count);
  }

  item(name) {
    const item = make("li", "online-item");
    item.dataset.username = name;
    item.append(avatar(name));
    if (name === this.me) {
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
  render() {
    const me = this.me;
    const names = Array.from(this.online).sort(function (a, b) {
      if (a === me) return -1;
      if (b === me) return 1;
      return a.localeCompare(b);
    });
    const existing = new Map();
    for (const item of Array.from(this.list.children)) existing.set(item.dataset.username, item);
    names.forEach((name, index) => {
      let item = existing.get(name);
      if (item) existing.delete(name);
      else item = this.item(name);
      const here = this.list.children[index] || null;
      if (here !== item) this.list.insertBefore(item, here);
    });
    for (const stale of existing.values()) stale.remove();
    this.count.textContent = String(this.online.size);
    this.toggleCount.textContent = String(this.online.size);
  }

  // --- typing ----------------------------------------------------------------------------

  typing(user) {
    if (user === this.me) return;
    clearTimeout(this.typists.get(user));
    this.typists.set(user, setTimeout(() => {
      this.typists.delete(user);
      this.renderTyping();
    }, TYPING_SHOWN_FOR));
    this.renderTyping();
  }

  // Their message arrived, or they left.
  stoppedTyping(user) {
    if (!this.typists.has(user)) return;
    clearTimeout(this.typists.get(user));
    this.typists.delete(user);
    this.renderTyping();
  }

  clearTyping() {
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
    this.renderTyping();
  }

  renderTyping() {
    const names = Array.from(this.typists.keys()).sort();
    this.typingLine.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" :
      names.length === 2 ? names[0] + " and " + names[1] + " are typing…" :
      "Several people are typing…";
  }
}

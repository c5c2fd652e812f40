// @name completion in the composer: the room's members whose names start with
// what follows the @, from /api/rooms/<slug>/members/, as a listbox the arrow
// keys move through and Enter or Tab takes.

import { make } from "./dom.js";

const NAME_BEFORE_CARET = /(?:^|[^\w@.+-])@([\w.@+-]*)$/;
const WAIT = 150; // ms of quiet typing before asking the server

export class MentionCompleter {
  constructor({ input, list, slug }) {
    this.input = input;
    this.list = list;
    this.slug = slug;
    this.names = [];
    this.active = -1;
    this.timer = null;
    this.asked = "";
    input.addEventListener("input", () => this.changed());
    input.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
    list.addEventListener("mousedown", (event) => {
      const option = event.target.closest("[role=option]");
      if (!option) return;
      event.preventDefault(); // keep the focus in the composer
      this.take(option.dataset.name);
    });
  }

  open() {
    return !this.list.hidden;
  }

  // The composer asks first: true if the key was the list's.
  keydown(event) {
    if (!this.open()) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : this.names.length - 1;
      this.select((this.active + step) % this.names.length);
    } else if ((event.key === "Enter" || event.key === "Tab") && this.active >= 0) {
      this.take(this.names[this.active]);
    } else if (event.key === "Escape") {
      this.hide();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  prefix() {
    const caret = this.input.selectionStart;
    const match = NAME_BEFORE_CARET.exec(this.input.value.slice(0, caret));
    return match ? match[1] : null;
  }

  changed() {
    const prefix = this.prefix();
    clearTimeout(this.timer);
    if (prefix === null) return this.hide();
    this.timer = setTimeout(() => this.ask(prefix), WAIT);
  }

  ask(prefix) {
    this.asked = prefix;
    const url = "/api/rooms/" + encodeURIComponent(this.slug) + "/members/?q=" + encodeURIComponent(prefix);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : { members: [] }))
      .then((data) => {
        if (this.asked === prefix && this.prefix() === prefix) this.show(data.members || []);
      })
      .catch(() => this.hide());
  }

  show(names) {
    this.names = names;
    this.list.replaceChildren();
    if (!names.length) return this.hide();
    names.forEach((name, index) => {
      const option = make("li", "mention-option", "@" + name);
      option.id = "mention-option-" + index;
      option.setAttribute("role", "option");
      option.dataset.name = name;
      this.list.append(option);
    });
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.select(0);
  }

  select(index) {
    this.active = index;
    for (const option of this.list.children) {
      option.setAttribute("aria-selected", option.id === "mention-option-" + index ? "true" : "false");
    }
    this.input.setAttribute("aria-activedescendant", "mention-option-" + index);
  }

  take(name) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@[\w.@+-]*$/, "@" + name + " ");
    this.input.value = before + this.input.value.slice(caret);
    this.input.setSelectionRange(before.length, before.length);
    this.hide();
    this.input.dispatchEvent(new Event("input"));
  }

  hide() {
    this.list.hidden = true;
    this.names = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }
}

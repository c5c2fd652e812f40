// The people picker (templates/chat/people_picker.html): a name typed in its box
// finds people through /api/users/, shown as a listbox that the arrow keys move
// through; Enter or a click opens the conversation (/dm/<username>/), Escape
// closes the list. Without this script the box's form opens /people/?q=...,
// which lists the same people. Names only ever reach the page as text.

import { make, paintAvatar } from "./dom.js";

const WAIT = 150; // ms of quiet typing before asking the server
const SHOWN = 8;

class PeoplePicker {
  constructor(form) {
    this.form = form;
    this.input = form.querySelector("[role=combobox]");
    this.list = document.getElementById(this.input.getAttribute("aria-controls"));
    this.status = document.getElementById(this.input.getAttribute("aria-describedby"));
    this.people = [];
    this.active = -1;
    this.timer = null;
    this.asked = null;
    this.input.addEventListener("input", () => this.changed());
    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
    this.list.addEventListener("mousedown", (event) => {
      // Keep the focus in the box until the click opens the conversation.
      if (event.target.closest("[role=option]")) event.preventDefault();
    });
    this.list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.open(Number(option.dataset.index));
    });
  }

  query() {
    return this.input.value.trim();
  }

  changed() {
    clearTimeout(this.timer);
    const query = this.query();
    if (!query) {
      this.asked = null;
      this.hide();
      this.say("");
      return;
    }
    this.timer = setTimeout(() => this.ask(query), WAIT);
  }

  ask(query) {
    this.asked = query;
    const url = "/api/users/?limit=" + SHOWN + "&q=" + encodeURIComponent(query);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body: body })))
      .then(({ ok, body }) => {
        if (this.asked !== query || this.query() !== query) return; // typed on meanwhile
        if (!ok) {
          this.hide();
          const wait = body.retry_after ? " Try again in " + Math.ceil(body.retry_after) + " s." : "";
          this.say((body.detail || "The search failed") + "." + wait);
          return;
        }
        this.show(body.users || [], Boolean(body.more));
      })
      .catch(() => {
        if (this.asked !== query) return;
        this.hide();
        this.say("The search failed: check the connection and try again.");
      });
  }

  show(people, more) {
    this.people = people;
    this.list.replaceChildren();
    if (!people.length) {
      this.hide();
      this.say("Nobody here is called “" + this.query() + "”.");
      return;
    }
    people.forEach((person, index) => {
      const option = make("li", "picker-option");
      option.id = this.list.id + "-" + index;
      option.setAttribute("role", "option");
      option.dataset.index = String(index);
      option.dataset.username = person.username;
      const face = make("span", "avatar");
      face.setAttribute("aria-hidden", "true");
      paintAvatar(face, person.username);
      const text = make("span", "person-text");
      if (person.name) text.append(make("span", "person-name", person.name), " ");
      text.append(make("span", "person-username", person.username));
      option.append(face, text);
      this.list.append(option);
    });
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.select(0);
    const found = people.length === 1 ? "1 person" : people.length + " people";
    this.say(found + (more ? " (and more: type more of the name)" : "") + ". Enter opens the conversation.");
  }

  select(index) {
    this.active = index;
    for (const option of this.list.children) {
      option.setAttribute("aria-selected", option.dataset.index === String(index) ? "true" : "false");
    }
    const option = this.list.children[index];
    if (option) {
      this.input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    }
  }

  isOpen() {
    return !this.list.hidden;
  }

  keydown(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!this.isOpen()) {
        if (this.query()) this.ask(this.query());
      } else {
        const step = event.key === "ArrowDown" ? 1 : this.people.length - 1;
        this.select((this.active + step) % this.people.length);
      }
      event.preventDefault();
    } else if (event.key === "Enter" && this.isOpen() && this.active >= 0) {
      event.preventDefault(); // the conversation, not the form's list of people
      this.open(this.active);
    } else if (event.key === "Escape" && this.isOpen()) {
      event.preventDefault();
      this.hide();
    }
  }

  open(index) {
    const person = this.people[index];
    if (!person) return;
    this.say("Opening the conversation with " + person.username + "…");
    window.location.assign(person.url);
  }

  hide() {
    this.list.hidden = true;
    this.list.replaceChildren();
    this.people = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  say(text) {
    if (this.status && this.status.textContent !== text) this.status.textContent = text;
  }
}

for (const form of document.querySelectorAll("form[data-people-picker]")) new PeoplePicker(form);

// The people page's list, drawn by the server: each face in its person's color.
for (const face of document.querySelectorAll("[data-avatar]")) paintAvatar(face, face.dataset.avatar);

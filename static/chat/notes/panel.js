// The room's shared notes (docs/protocol.md, Shared notes): the panel, its
// "saved" line, who is editing, and read-only for readers and archived rooms.
// The document is a Y.Doc whose Y.Text "notes" the textarea edits
// (binding.js), kept in step with the server by provider.js. Nothing is
// fetched until the panel is first opened; after that the socket stays up while
// the page is open, so that closing the panel loses no edit in flight.

import { Awareness } from "../vendor/y-protocols/awareness.js";
import * as Y from "../vendor/yjs/yjs.js";
import { avatar, make } from "../dom.js";
import { TextareaBinding } from "./binding.js";
import { NotesProvider } from "./provider.js";

export const TEXT_NAME = "notes";

// The server's reasons for refusing an update (docs/protocol.md, The notes socket).
const TOO_LARGE = "too-large";
const ARCHIVED = "archived";

const WORDS = {
  connecting: "Connecting…",
  saving: "Saving…",
  saved: "Saved",
  offline: "Offline: changes kept here",
  readonly: "Read-only",
  ended: "Not available",
};

export class NotesPanel {
  // root: #room; me: the reader's name; slug; close: the close codes by name;
  // writable: whether the page believes the reader may write (the server has the last word).
  constructor({ root, me, slug, close, writable }) {
    this.root = root;
    this.me = me;
    this.slug = slug;
    this.close = close;
    this.mayWrite = writable;
    this.archived = false;
    this.refusedWrite = false;
    this.panel = document.getElementById("notes-panel");
    this.toggle = document.getElementById("notes-toggle");
    this.textarea = document.getElementById("notes-text");
    this.mirror = document.getElementById("notes-mirror");
    this.statusLine = document.getElementById("notes-status");
    this.editors = document.getElementById("notes-editors");
    this.errorLine = document.getElementById("notes-error");
    this.title = document.getElementById("notes-title");
    this.state = "connecting";
    this.pendingCount = 0;
    this.started = false;
    this.doc = null;

    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    document.getElementById("notes-close").addEventListener("click", () => {
      this.setOpen(false);
      this.toggle.focus();
    });
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && event.target !== this.textarea) {
        this.setOpen(false);
        this.toggle.focus();
      }
    });
    if (location.hash === "#notes") this.setOpen(true);
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.root.dataset.notes = open ? "open" : "closed";
    this.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) return;
    if (!this.started) this.start();
    this.title.focus();
  }

  // The room was archived or unarchived (the room socket's news).
  setArchived(archived) {
    this.archived = archived;
    this.applyReadOnly();
  }

  readOnly() {
    return this.archived || !this.mayWrite || this.refusedWrite;
  }

  // --- the document ------------------------------------------------------------------------

  start() {
    this.started = true;
    this.doc = new Y.Doc();
    this.awareness = new Awareness(this.doc);
    this.binding = new TextareaBinding({
      ytext: this.doc.getText(TEXT_NAME),
      textarea: this.textarea,
      mirror: this.mirror,
      awareness: this.awareness,
      me: this.me,
    });
    this.awareness.on("change", () => this.renderEditors());
    this.provider = new NotesProvider({
      slug: this.slug,
      doc: this.doc,
      awareness: this.awareness,
      close: this.close,
      onState: (state) => this.setState(state),
      onSaved: (pending) => {
        this.pendingCount = pending;
        this.renderStatus();
      },
      onRefused: (reason) => this.refused(reason),
      onEnd: () => {
        this.textarea.readOnly = true;
        this.showError("These notes are not available to you.");
      },
    });
    this.provider.readOnly = this.readOnly();
    this.applyReadOnly();
    this.provider.connect();
  }

  // Start again from the server's copy: after a refused update, this page's copy
  // holds something the server's never will.
  reset() {
    if (!this.started) return;
    this.provider.destroy();
    this.binding.destroy();
    this.awareness.destroy();
    this.doc.destroy();
    this.started = false;
    this.pendingCount = 0;
    this.start();
  }

  // The server did not apply an update: `too-large`, `archived` or `read-only`.
  refused(reason) {
    if (reason === TOO_LARGE) {
      this.showError("The notes are at their size limit: your last change was not saved.");
    } else if (reason === ARCHIVED) {
      this.archived = true;
    } else {
      this.refusedWrite = true;
    }
    this.reset();
  }

  // --- what the panel says --------------------------------------------------------------------

  applyReadOnly() {
    const locked = this.readOnly();
    if (this.provider) this.provider.readOnly = locked;
    // Until the first sync, the box waits for the server's text.
    this.textarea.readOnly = locked || this.state === "connecting" || this.state === "ended";
    this.panel.dataset.readonly = locked ? "true" : "false";
    this.textarea.placeholder = locked
      ? "No notes yet."
      : "Notes everyone here can edit: an agenda, minutes, links…";
    this.renderStatus();
  }

  setState(state) {
    // "connecting" again after a first sync is a reconnect: the box stays editable.
    if (state === "connecting" && this.state !== "connecting") state = "offline";
    if (state === "synced" && this.state === "connecting") this.binding.replaced();
    this.state = state;
    this.applyReadOnly();
  }

  renderStatus() {
    let state;
    if (this.state === "ended") state = "ended";
    else if (this.state === "connecting") state = "connecting";
    else if (this.state === "offline") state = "offline";
    else if (this.readOnly()) state = "readonly";
    else state = this.pendingCount > 0 ? "saving" : "saved";
    this.statusLine.dataset.state = state;
    let words = WORDS[state];
    if (state === "readonly") words = this.archived ? "Read-only: the room is archived" : "Read-only";
    this.statusLine.textContent = words;
  }

  renderEditors() {
    // One entry per person, however many tabs they have open; the reader first.
    const names = new Set();
    this.awareness.getStates().forEach((state) => {
      if (state && state.user && typeof state.user.name === "string") names.add(state.user.name);
    });
    const others = Array.from(names).filter((name) => name !== this.me).sort();
    const items = others.map((name) => {
      const item = make("li", "notes-editor-item");
      item.dataset.username = name;
      item.append(avatar(name), make("span", "notes-editor-name", name));
      return item;
    });
    this.editors.replaceChildren(...items);
    this.editors.hidden = items.length === 0;
    this.editors.setAttribute("aria-label", others.length ? "Also here: " + others.join(", ") : "Nobody else here");
  }

  showError(text) {
    this.errorLine.textContent = text;
  }
}

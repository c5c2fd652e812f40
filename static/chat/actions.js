// What a reader can do to a message: the actions menu (reply, react, edit,
// delete), the reaction picker, reactions toggled from their chips, and
// editing in place (the box itself is the view's). Every control is a real
// button, reachable from the keyboard.

import { make } from "./dom.js";
import { editInPlace } from "./message-view.js";

const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

export class MessageActions {
  // me: the reader; staff: may delete anyone's message (the server decides too);
  // send(frame) -> true if it went out; onReply(item), onRefused(text), onNotice(text).
  constructor({ list, menu, picker, me, staff, send, onReply, onRefused, onNotice }) {
    this.list = list;
    this.menu = menu;
    this.picker = picker;
    this.me = me;
    this.staff = staff;
    this.send = send;
    this.onReply = onReply;
    this.onRefused = onRefused;
    this.onNotice = onNotice;
    this.target = null; // the message item a menu or the picker was opened for
    this.opener = null; // the button to give focus back to

    const choices = picker.querySelector("#emoji-choices");
    for (const emoji of COMMON_EMOJI) {
      const button = make("button", "emoji-choice", emoji);
      button.type = "button";
      button.dataset.emoji = emoji;
      button.setAttribute("aria-label", "React with " + emoji);
      choices.append(button);
    }

    list.addEventListener("click", (event) => {
      const actions = event.target.closest(".message-actions");
      if (actions) return this.openMenu(actions.closest("li.message"), actions);
      const chip = event.target.closest(".reaction");
      if (chip) return this.toggle(chip.closest("li.message"), chip);
    });
    menu.addEventListener("click", (event) => {
      const item = event.target.closest("[data-action]");
      if (item) this.act(item.dataset.action, item);
    });
    menu.addEventListener("keydown", (event) => this.menuKeys(event));
    picker.addEventListener("click", (event) => {
      const choice = event.target.closest(".emoji-choice");
      if (choice) this.react(choice.dataset.emoji);
    });
    picker.querySelector("#emoji-other").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = picker.querySelector("#emoji-input");
      const emoji = input.value.trim();
      if (emoji) this.react(emoji);
      input.value = "";
    });
    picker.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    document.addEventListener("click", (event) => {
      if (this.target && !event.target.closest("#message-menu, #emoji-picker, .message-actions")) this.close(false);
    });
  }

  // --- the menu --------------------------------------------------------------------------

  openMenu(item, opener) {
    if (!item || !item.dataset.id || item.classList.contains("deleted")) return;
    const mine = item.dataset.author === this.me;
    this.menu.querySelector('[data-action="edit"]').hidden = !mine;
    const remove = this.menu.querySelector('[data-action="delete"]');
    remove.hidden = !(mine || this.staff);
    remove.textContent = "Delete";
    delete remove.dataset.confirm;
    this.place(this.menu, item, opener);
    this.menu.querySelector("[data-action]:not([hidden])").focus();
  }

  place(popover, item, opener) {
    this.close(false);
    this.target = item;
    this.opener = opener;
    opener.setAttribute("aria-expanded", "true");
    popover.hidden = false;
    const box = opener.getBoundingClientRect();
    const width = popover.offsetWidth;
    popover.style.top = Math.min(window.innerHeight - popover.offsetHeight - 8, box.bottom + 4) + "px";
    popover.style.left = Math.max(8, Math.min(window.innerWidth - width - 8, box.right - width)) + "px";
  }

  close(restoreFocus = true) {
    this.menu.hidden = true;
    this.picker.hidden = true;
    if (this.opener) {
      this.opener.setAttribute("aria-expanded", "false");
      if (restoreFocus && this.opener.isConnected) this.opener.focus();
    }
    this.target = null;
    this.opener = null;
  }

  menuKeys(event) {
    const items = Array.from(this.menu.querySelectorAll("[data-action]:not([hidden])"));
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : items.length - 1;
      items[(at + step) % items.length].focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1].focus();
    } else if (event.key === "Escape" || event.key === "Tab") {
      event.preventDefault();
      this.close();
    }
  }

  act(action, button) {
    const item = this.target;
    if (!item) return;
    const id = Number(item.dataset.id);
    if (action === "reply") {
      this.close(false);
      this.onReply(item);
    } else if (action === "react") {
      const opener = this.opener;
      this.place(this.picker, item, opener);
      this.picker.querySelector(".emoji-choice").focus();
    } else if (action === "edit") {
      this.close(false);
      this.edit(item);
    } else if (action === "link") {
      this.close(false);
      this.copyLink(item);
    } else if (action === "delete") {
      // Asked twice, in place: no dialog covers the conversation.
      if (!button.dataset.confirm) {
        button.dataset.confirm = "true";
        button.textContent = "Delete for everyone?";
        return;
      }
      this.close(false);
      if (!this.send({ type: "message.delete", id: id })) this.onRefused("Not connected: try again in a moment.");
    }
  }

  // The message's permalink, to the clipboard (or to the address bar where it cannot be).
  copyLink(item) {
    const link = item.querySelector("a.permalink");
    if (!link) return;
    const url = new URL(link.getAttribute("href"), location.href).href;
    const done = () => this.onNotice("Link to the message copied.");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(done, () => location.assign(url));
    } else {
      location.assign(url);
    }
  }

  // --- reactions -------------------------------------------------------------------------

  react(emoji) {
    const item = this.target;
    this.close();
    if (!item) return;
    const chip = item.querySelector('.reaction[data-emoji="' + CSS.escape(emoji) + '"]');
    const mine = chip && chip.getAttribute("aria-pressed") === "true";
    this.sendReaction(item, emoji, !mine);
  }

  toggle(item, chip) {
    this.sendReaction(item, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
  }

  sendReaction(item, emoji, add) {
    const frame = { type: add ? "reaction.add" : "reaction.remove", id: Number(item.dataset.id), emoji: emoji };
    if (!this.send(frame)) this.onRefused("Not connected: try again in a moment.");
  }

  // --- editing in place ------------------------------------------------------------------

  edit(item) {
    editInPlace(item, (text) => {
      if (this.send({ type: "message.edit", id: Number(item.dataset.id), body: text })) return true;
      this.onRefused("Not connected: your edit was not saved.");
      return false;
    });
  }
}

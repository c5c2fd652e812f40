// The list of message elements: each in id order with pending ones last, the
// notes between them (day dividers, the unread divider), groups, and the
// reader's place in it. A confirmed message joins the store and the list in one
// step, so that the two cannot disagree about what is shown. What a message
// looks like is the view's (message-view.js); when to page in history, messages.js's.

import { make } from "./dom.js";
import {
  quoteDeleted, quoteEdited, renderMessage, setDelivery, showDeleted, showEdited, showReactions,
} from "./message-view.js";

// A message joins the previous one's group within this time (same author, same day).
const GROUP_WINDOW = 5 * 60 * 1000;

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

function dayKey(date) {
  return date.getFullYear() + "-" + (date.getMonth() + 1) + "-" + date.getDate();
}

function dayLabel(date) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (sameDay(date, today)) return "Today";
  if (sameDay(date, yesterday)) return "Yesterday";
  const options = { weekday: "long", month: "long", day: "numeric" };
  if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
}

function isMessage(node) {
  return node.classList.contains("message");
}

export class MessageList {
  // element: the <ol>; store: the MessageStore it shows; me: the reader; slug: the room.
  constructor({ element, jumpButton, store, me, slug }) {
    this.element = element;
    this.jumpButton = jumpButton;
    this.store = store;
    this.me = me;
    this.slug = slug;
    this.items = new Map(); // id -> element, for each message the store shows
    this.pendingItems = new Map(); // client_id -> element, in the order they were written
    this.parsedTimes = new WeakMap(); // message element -> {iso, date}
    this.pinned = false; // the reader is at the newest message: keep them there
    // The list shrinks when the box grows or a phone's keyboard opens: stay at the newest.
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        if (this.pinned) element.scrollTop = element.scrollHeight;
      }).observe(element);
    }
  }

  render(message, pending) {
    return renderMessage(message, { me: this.me, slug: this.slug, pending: pending });
  }

  item(id) {
    return this.items.get(Number(id)) || null;
  }

  // --- in and out ------------------------------------------------------------------------

  // The messages the server put in the page (plain, for a browser without
  // JavaScript), rendered from their message objects like every other. They
  // are already in order, so each stays where it is.
  renderPageItems() {
    for (const item of Array.from(this.element.querySelectorAll("li.message[data-message]"))) {
      const message = JSON.parse(item.dataset.message);
      const element = this.render(message, false);
      item.replaceWith(element);
      this.items.set(Number(message.id), element);
      this.store.add(message);
    }
  }

  // A confirmed message, in id order: new, or in place of `replacing` (its
  // pending element). Returns its element.
  insert(message, replacing) {
    const element = this.render(message, false);
    if (replacing) replacing.replaceWith(element);
    this.items.set(Number(message.id), element);
    this.place(element, this.store.add(message));
    return element;
  }

  // Acknowledged messages are in id order; pending ones stay below them, last.
  // next: the id of the message it goes before, or null for none.
  place(element, next) {
    let before;
    if (next !== null) {
      // Keep the notes that lead into the later message attached to it.
      before = this.item(next);
      while (before.previousElementSibling && !isMessage(before.previousElementSibling)) {
        before = before.previousElementSibling;
      }
    } else {
      // Nearly always newer than every confirmed message: it goes before the pending ones.
      before = this.pendingItems.values().next().value || null;
    }
    if (element.parentNode === this.element && element.nextElementSibling === before) return;
    this.element.insertBefore(element, before);
  }

  // The element of a message the store no longer shows.
  remove(id) {
    this.item(id).remove();
    this.items.delete(Number(id));
  }

  // Everything but the messages still on their way (leaving a permalink).
  removeConfirmed() {
    for (const item of Array.from(this.element.children)) {
      if (!item.classList.contains("pending")) item.remove();
    }
    this.items.clear();
  }

  addPending(clientId, message) {
    const element = this.render(message, true);
    this.element.append(element);
    this.pendingItems.set(clientId, element);
  }

  // A pending message's element, no longer pending (acknowledged or refused), or null.
  takePending(clientId) {
    const element = this.pendingItems.get(clientId);
    if (!element) return null;
    this.pendingItems.delete(clientId);
    return element;
  }

  // Refused for good: it stays, marked as not sent. False if it was not on its way.
  failed(clientId) {
    const element = this.takePending(clientId);
    if (!element) return false;
    element.classList.remove("pending");
    element.classList.add("failed");
    setDelivery(element, "Not sent");
    return true;
  }

  // What the messages still on their way say under them, all alike.
  pendingStatus(text) {
    for (const element of this.pendingItems.values()) setDelivery(element, text);
  }

  // --- changes in place ------------------------------------------------------------------

  edited(frame) {
    const item = this.item(frame.id);
    if (!item) return;
    showEdited(item, frame);
    for (const quote of this.quotesOf(frame.id)) quoteEdited(quote, frame.body);
  }

  // A tombstone where the message was; replies to it say it is gone.
  deleted(frame) {
    for (const quote of this.quotesOf(frame.id)) quoteDeleted(quote);
    const item = this.item(frame.id);
    if (item) showDeleted(item);
  }

  reactions(frame) {
    showReactions(this.item(frame.id), frame.reactions, this.me);
  }

  quotesOf(id) {
    return this.element.querySelectorAll('.reply-quote[data-reply-to="' + Number(id) + '"]');
  }

  // --- groups and dividers ---------------------------------------------------------------

  createdOf(item) {
    const time = item.querySelector("time");
    const iso = time ? time.dateTime : "";
    const known = this.parsedTimes.get(item);
    if (known && known.iso === iso) return known.date;
    const date = new Date(iso || NaN);
    this.parsedTimes.set(item, { iso: iso, date: date });
    return date;
  }

  // Day dividers and groups follow from the messages' order and local dates.
  // regroup(from) recomputes them from the message before `from` to the end (a
  // new message is nearly always last, so that is short); regroup() does the
  // whole list, after history, deletions and out-of-order inserts. Dividers that
  // are still right are kept: a live region would announce every one re-created.
  regroup(from) {
    const list = this.element;
    let previous = null;
    let gutter = []; // the notes (dividers) between the previous message and this one
    let node = list.firstElementChild;
    if (from && from.parentNode === list) {
      let back = from.previousElementSibling;
      while (back && !isMessage(back)) back = back.previousElementSibling;
      if (back) {
        previous = back;
        node = back.nextElementSibling;
      }
    }
    while (node) {
      const next = node.nextElementSibling;
      if (!isMessage(node)) {
        gutter.push(node);
        node = next;
        continue;
      }
      const created = this.createdOf(node);
      const day = isNaN(created.getTime()) ? "" : dayKey(created);
      const before = previous ? this.createdOf(previous) : null;
      const newDay = !previous || (day !== "" && dayKey(before) !== day);
      let divider = null;
      for (const note of gutter) {
        if (!note.classList.contains("day-divider")) continue;
        if (newDay && !divider && note.dataset.day === day) divider = note;
        else note.remove();
      }
      if (newDay && day) {
        if (!divider) {
          divider = make("li", "day-divider");
          divider.dataset.day = day;
          divider.append(make("span", "divider-label"));
          const first = gutter.find(function (note) { return note.parentNode === list; });
          list.insertBefore(divider, first || node);
        }
        const label = dayLabel(created);
        const span = divider.firstElementChild;
        if (span.textContent !== label) span.textContent = label;
      }
      // The unread divider between two messages starts a new group.
      const interrupted = gutter.some(function (note) {
        return note.parentNode === list && !note.classList.contains("day-divider");
      });
      const grouped = Boolean(previous) && !newDay && !interrupted &&
        previous.dataset.author === node.dataset.author &&
        !previous.classList.contains("failed") &&
        Math.abs(created - before) <= GROUP_WINDOW;
      if (node.classList.contains("grouped") !== grouped) node.classList.toggle("grouped", grouped);
      previous = node;
      gutter = [];
      node = next;
    }
    // Nothing follows these any more (their message was deleted or dropped).
    for (const note of gutter) {
      if (note.classList.contains("day-divider") || note.classList.contains("unread-divider")) note.remove();
    }
    const state = this.store.hasMore ? "more" : list.querySelector("li.message") ? "complete" : "empty";
    if (list.dataset.history !== state) list.dataset.history = state;
  }

  unreadDivider() {
    return this.element.querySelector("li.unread-divider");
  }

  // The divider goes before the first message of someone else above the read mark.
  // Unforced, it trusts a divider that already leads into a new message: only
  // messages below it arrived since. History pages (above it) force a full look.
  placeUnreadDivider(force) {
    const current = this.unreadDivider();
    const after = current && current.nextElementSibling;
    if (!force && after && isMessage(after) && !after.classList.contains("mine") && Number(after.dataset.id) > this.store.unreadMark) {
      return false;
    }
    const first = this.store.firstUnread();
    const target = first === null ? null : this.item(first);
    if (!target || (current && current.nextElementSibling === target)) return false;
    if (current) current.remove();
    const divider = make("li", "unread-divider");
    divider.append(make("span", "divider-label", "New messages"));
    this.element.insertBefore(divider, target);
    return true;
  }

  // --- the reader's place ----------------------------------------------------------------

  nearBottom(margin = 80) {
    const list = this.element;
    return list.scrollHeight - list.scrollTop - list.clientHeight < margin;
  }

  scrollToBottom() {
    this.element.scrollTop = this.element.scrollHeight;
    this.pinned = true;
    this.jumpButton.hidden = true;
  }

  // Where a page opens: more is new than fits, so at the first new message (with
  // its day), not the last; otherwise at the newest.
  scrollToStart() {
    const list = this.element;
    const divider = this.unreadDivider();
    if (divider && list.scrollHeight - divider.offsetTop > list.clientHeight) {
      const above = divider.previousElementSibling;
      const anchor = above && above.classList.contains("day-divider") ? above : divider;
      list.scrollTop = anchor.offsetTop - 12;
      this.pinned = this.nearBottom();
    } else {
      this.scrollToBottom();
    }
  }

  // change() adds above what the reader is reading, which stays where it was.
  keepingPlace(change) {
    const list = this.element;
    const height = list.scrollHeight;
    const top = list.scrollTop;
    change();
    list.scrollTop = top + (list.scrollHeight - height);
  }

  // Scroll to a message and light it up.
  highlight(item) {
    item.scrollIntoView({ block: "center" });
    item.classList.remove("highlight");
    void item.offsetWidth; // restart the animation
    item.classList.add("highlight");
    const target = item.querySelector(".message-actions");
    if (target) target.focus({ preventScroll: true });
  }

  // The jump-to-latest button: its words (kept when none are given) and whether it shows.
  jump(text, shown) {
    if (text) this.jumpButton.textContent = text;
    this.jumpButton.hidden = !shown;
  }
}

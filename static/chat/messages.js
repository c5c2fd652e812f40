// The message list: messages in id order, pending ones last, day dividers,
// groups, the unread divider, older history on scroll, and the reader's place.
// render() is the one place that turns a message into DOM, for history, live
// messages and those the server put in the page alike; its body is built as
// nodes by format.js, never parsed as HTML.

import { renderAttachments } from "./attachments.js";
import { avatar, make, setTime } from "./dom.js";
import { renderBody } from "./format.js";

// A message joins the previous one's group within this time (same author, same day).
const GROUP_WINDOW = 5 * 60 * 1000;
const PAGE = 50;
// Live messages kept while the reader is away from the newest (a permalink);
// past this many the page reads them from history instead.
const LATER_MAX = 2000;

// The link to one message: the room opened at it (docs/protocol.md, Permalinks).
export function permalink(slug, id) {
  return "/rooms/" + encodeURIComponent(slug) + "/?around=" + Number(id);
}

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

function editedMark() {
  return make("span", "edited", "(edited)");
}

// What a reply shows of its original: who, and the first line (or that it is gone).
function replyQuote(reply) {
  const quote = make("button", "reply-quote");
  quote.type = "button";
  quote.dataset.replyTo = String(reply.id);
  quote.append(make("span", "reply-author", reply.user), " ");
  const body = make("span", "reply-body");
  if (reply.deleted) body.textContent = "Deleted message";
  else renderBody(body, reply.body, []);
  quote.append(body);
  quote.classList.toggle("deleted", Boolean(reply.deleted));
  quote.setAttribute("aria-label", "Reply to " + reply.user + ": " + (reply.deleted ? "deleted message" : reply.body) + ". Show it.");
  return quote;
}

// Each emoji with its count; pressed when the reader is among those who reacted,
// whose names show on hover and focus.
function renderReactions(container, reactions, me) {
  container.replaceChildren();
  for (const reaction of reactions || []) {
    const chip = make("button", "reaction");
    chip.type = "button";
    chip.dataset.emoji = reaction.emoji;
    const mine = reaction.users.includes(me);
    chip.setAttribute("aria-pressed", mine ? "true" : "false");
    const more = reaction.count - reaction.users.length;
    const names = reaction.users.join(", ") + (more > 0 ? " and " + more + " more" : "");
    chip.title = names;
    chip.setAttribute("aria-label", reaction.emoji + " " + reaction.count + ": " + names);
    chip.append(make("span", "reaction-emoji", reaction.emoji), make("span", "reaction-count", String(reaction.count)));
    chip.append(make("span", "reaction-who", names));
    container.append(chip);
  }
  container.hidden = !container.childElementCount;
}

// A body longer than this (characters or lines) is folded behind "Show more".
const FOLD_CHARACTERS = 700;
const FOLD_LINES = 12;

// Long bodies fold to a few lines, with a button to unfold them (and fold again).
function foldLong(body) {
  const source = body.dataset.source || "";
  const long = source.length > FOLD_CHARACTERS || source.split("\n").length > FOLD_LINES;
  let toggle = body.nextElementSibling;
  if (!toggle || !toggle.classList.contains("show-more")) toggle = null;
  if (!long) {
    body.classList.remove("folded");
    if (toggle) toggle.remove();
    return;
  }
  body.classList.add("folded");
  if (!toggle) {
    toggle = make("button", "link-button show-more");
    toggle.type = "button";
    toggle.addEventListener("click", () => {
      const folded = body.classList.toggle("folded");
      toggle.textContent = folded ? "Show more" : "Show less";
      toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    });
    body.after(toggle);
  }
  toggle.textContent = "Show more";
  toggle.setAttribute("aria-expanded", "false");
}

function setDelivery(item, text) {
  let note = item.querySelector(".delivery");
  if (!text) {
    if (note) note.remove();
    return;
  }
  if (!note) {
    // Under the bubble rather than in its header, which a grouped message hides.
    note = make("span", "delivery");
    item.querySelector(".message-main").append(note);
  }
  note.textContent = text;
}

export class MessageList {
  // requestHistory(cursor, limit) ({before} or {after}) and sendRead(id) return true
  // if the frame went out. hasNewer: the page opened away from the newest (a permalink).
  constructor({ list, historyStatus, jumpButton, slug, me, lastId, lastRead, hasMore, hasNewer, requestHistory, sendRead }) {
    this.list = list;
    this.slug = slug;
    this.historyStatus = historyStatus;
    this.jumpButton = jumpButton;
    this.me = me;
    this.lastId = lastId;
    // Messages of others above this number are new to the reader: the unread divider.
    this.unreadMark = lastRead;
    this.hasMore = hasMore;
    this.requestHistory = requestHistory;
    this.sendRead = sendRead;
    this.lastReadSent = 0;
    this.loadingHistory = false;
    this.hole = null; // {after, before}: ids not replayed after a long absence (gap), until paged in
    // Away from the newest (a permalink): newer messages are paged in forward as the
    // reader scrolls down, and live ones wait in `later` (by id) until the pages meet them.
    this.detached = Boolean(hasNewer);
    this.later = new Map();
    this.laterComplete = true; // false once `later` overflowed or a gap skipped some
    this.loadingNewer = false;
    this.pinned = !this.detached; // the reader is at the newest message: keep them there
    this.pendingItems = new Map(); // client_id -> element
    this.wanted = null; // a message to show once history brings it (a reply's original)
    this.parsedTimes = new WeakMap(); // message element -> {iso, date}
    this.frameWanted = false;
    this.stickWanted = false;
    this.jumpWanted = false;

    list.addEventListener("scroll", () => {
      this.pinned = this.nearBottom() && !this.detached;
      if (this.pinned) jumpButton.hidden = true;
      if (list.scrollTop < 150) this.loadOlder();
      if (this.detached && this.nearBottom(300)) this.loadNewer();
    }, { passive: true });
    // The list shrinks when the box grows or a phone's keyboard opens: stay at the newest.
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        if (this.pinned) list.scrollTop = list.scrollHeight;
      }).observe(list);
    }
  }

  // The messages the server put in the page (plain, for a browser without
  // JavaScript), rendered from their message objects like every other.
  // around: the message a permalink names, shown and lit up instead of the newest.
  start(around) {
    const list = this.list;
    list.setAttribute("aria-busy", "true");
    for (const item of Array.from(list.querySelectorAll("li.message[data-message]"))) {
      item.replaceWith(this.render(JSON.parse(item.dataset.message), false));
    }
    this.placeUnreadDivider(true);
    this.regroup();
    if (around) {
      this.showAround(around);
      requestAnimationFrame(() => list.removeAttribute("aria-busy"));
      return;
    }
    const divider = list.querySelector("li.unread-divider");
    if (divider && list.scrollHeight - divider.offsetTop > list.clientHeight) {
      // More is new than fits: start at the first new message (with its day), not the last.
      const above = divider.previousElementSibling;
      const anchor = above && above.classList.contains("day-divider") ? above : divider;
      list.scrollTop = anchor.offsetTop - 12;
      this.pinned = this.nearBottom();
    } else {
      this.scrollToBottom();
    }
    requestAnimationFrame(() => list.removeAttribute("aria-busy"));
  }

  render(message, isPending) {
    const item = make("li", "message");
    if (message.user === this.me) item.classList.add("mine");
    if (isPending) item.classList.add("pending");
    if (message.id) item.dataset.id = String(message.id);
    item.dataset.author = message.user;
    item.dataset.reactionsVersion = "0";

    const meta = make("div", "message-meta");
    const time = document.createElement("time");
    setTime(time, message.created);
    let when = time;
    if (message.id) {
      // Every message's time is its link (a permalink).
      when = make("a", "permalink");
      when.href = permalink(this.slug, message.id);
      when.append(time);
    }
    meta.append(make("span", "author", message.user), " ", when);
    if (message.edited) meta.append(" ", editedMark());

    const main = make("div", "message-main");
    main.append(meta);
    if (message.reply_to) main.append(replyQuote(message.reply_to));
    const body = make("div", "body");
    body.dataset.source = message.body;
    renderBody(body, message.body, message.mentions);
    // A message of files alone has no text to show.
    body.hidden = !message.body;
    const files = make("div", "attachments");
    renderAttachments(files, message.attachments);
    const reactions = make("div", "reactions");
    renderReactions(reactions, message.reactions, this.me);
    main.append(body, files, reactions);
    foldLong(body);
    const actions = make("button", "message-actions", "⋯");
    actions.type = "button";
    actions.setAttribute("aria-haspopup", "menu");
    actions.setAttribute("aria-label", "Actions for this message");
    item.append(avatar(message.user), main, actions);
    if (isPending) setDelivery(item, "Sending…");
    return item;
  }

  // The newest message of mine still on screen, for ↑ in an empty composer.
  lastOfMine() {
    const mine = this.list.querySelectorAll("li.message.mine[data-id]:not(.deleted)");
    return mine.length ? mine[mine.length - 1] : null;
  }

  // Scroll to a message and light it up, paging in older history until it is there.
  show(id) {
    const item = this.item(id);
    if (item) {
      item.scrollIntoView({ block: "center" });
      item.classList.remove("highlight");
      void item.offsetWidth; // restart the animation
      item.classList.add("highlight");
      const target = item.querySelector(".message-actions");
      if (target) target.focus({ preventScroll: true });
      this.wanted = null;
      return;
    }
    const oldest = this.oldestId();
    if (!this.hasMore || (oldest !== null && oldest <= id)) return; // deleted meanwhile
    this.wanted = id;
    this.loadOlder();
  }

  // A permalink's message, or the first after where it was (deleted, or never was).
  showAround(id) {
    if (this.detached) this.setJump("Jump to latest");
    let item = this.item(id);
    if (!item) {
      item = Array.from(this.list.querySelectorAll("li.message[data-id]"))
        .find((candidate) => Number(candidate.dataset.id) > id) || null;
      this.historyStatus.textContent = "That message was deleted, or never was: here is where it would be.";
    }
    if (item) this.show(Number(item.dataset.id));
  }

  item(id) {
    return this.list.querySelector('li.message[data-id="' + Number(id) + '"]');
  }

  // The newest acknowledged message on screen.
  newestShown() {
    const items = this.list.querySelectorAll("li.message[data-id]");
    return items.length ? Number(items[items.length - 1].dataset.id) : 0;
  }

  createdOf(item) {
    const time = item.querySelector("time");
    const iso = time ? time.dateTime : "";
    const known = this.parsedTimes.get(item);
    if (known && known.iso === iso) return known.date;
    const date = new Date(iso || NaN);
    this.parsedTimes.set(item, { iso: iso, date: date });
    return date;
  }

  // --- what arrives ----------------------------------------------------------------------

  // A message of mine, shown at once and marked as sending until acknowledged.
  addPending(clientId, body, reply, attachments) {
    const message = { user: this.me, body: body, created: new Date().toISOString(), reply_to: reply, attachments: attachments };
    const element = this.render(message, true);
    this.list.append(element);
    this.pendingItems.set(clientId, element);
    this.regroup();
    this.scrollToBottom();
  }

  // What the messages still on their way say under them ("Sending…", or the wait
  // for a rate limit), all alike: they go in the order they were written.
  pendingStatus(text) {
    for (const element of this.pendingItems.values()) setDelivery(element, text);
  }

  // Refused for good: it stays, marked as not sent.
  failed(clientId) {
    const element = this.pendingItems.get(clientId);
    if (!element) return;
    this.pendingItems.delete(clientId);
    element.classList.remove("pending");
    element.classList.add("failed");
    setDelivery(element, "Not sent");
    this.regroup();
  }

  // A `message` frame: new, the acknowledgement of a pending one, or one already shown.
  message(message) {
    if (this.detached) {
      this.keepForLater(message);
      return;
    }
    const waiting = message.client_id ? this.pendingItems.get(message.client_id) : null;
    const shown = this.item(message.id);
    let element = null;
    if (waiting) {
      this.pendingItems.delete(message.client_id);
      if (shown) {
        waiting.remove();
      } else {
        // The server's rendering of it: its time, mentions and reply as stored.
        element = this.render(message, false);
        waiting.replaceWith(element);
        this.placeConfirmed(element, message.id);
      }
    } else if (shown) {
      // A resend's stored copy, or a replay of what is on screen: show it once.
      return;
    } else {
      element = this.render(message, false);
      this.placeConfirmed(element, message.id);
    }
    this.lastId = Math.max(this.lastId, message.id);

    let moved = false;
    if (message.user !== this.me) {
      if (document.visibilityState !== "visible") {
        moved = this.placeUnreadDivider();
      } else if (!this.list.querySelector("li.unread-divider")) {
        // Read as it arrives: no divider appears above it later.
        this.unreadMark = Math.max(this.unreadMark, message.id);
      }
    }
    if (moved || !element) this.regroup();
    else this.regroup(element);
    this.afterRender(this.pinned || message.user === this.me, message.user !== this.me);
  }

  edited(frame) {
    const item = this.item(frame.id);
    if (!item) return;
    const body = item.querySelector(".body");
    body.dataset.source = frame.body;
    renderBody(body, frame.body, frame.mentions);
    body.hidden = !frame.body;
    foldLong(body);
    if (!item.querySelector(".edited")) item.querySelector(".message-meta").append(" ", editedMark());
    for (const quote of this.list.querySelectorAll('.reply-quote[data-reply-to="' + Number(frame.id) + '"]')) {
      renderBody(quote.querySelector(".reply-body"), frame.body.split("\n", 1)[0], []);
    }
  }

  // A tombstone where the message was; replies to it say it is gone.
  deleted(frame) {
    for (const quote of this.list.querySelectorAll('.reply-quote[data-reply-to="' + Number(frame.id) + '"]')) {
      quote.classList.add("deleted");
      quote.querySelector(".reply-body").textContent = "Deleted message";
    }
    const item = this.item(frame.id);
    if (!item) return;
    item.classList.add("deleted");
    const body = item.querySelector(".body");
    body.replaceChildren("This message was deleted.");
    body.hidden = false;
    delete body.dataset.source;
    for (const gone of item.querySelectorAll(".reactions, .attachments, .reply-quote, .message-actions, .edited")) gone.remove();
  }

  reactions(frame) {
    const item = this.item(frame.id);
    if (!item || item.classList.contains("deleted")) return;
    // Broadcasts from two workers may cross: the newest version wins.
    if (Number(frame.version) < Number(item.dataset.reactionsVersion)) return;
    item.dataset.reactionsVersion = String(frame.version);
    renderReactions(item.querySelector(".reactions"), frame.reactions, this.me);
  }

  history(frame) {
    // A forward page (the answer to {after}) says has_newer and nothing of older ones.
    if ("has_newer" in frame && !("has_older" in frame)) {
      this.newer(frame);
      return;
    }
    const list = this.list;
    this.loadingHistory = false;
    this.historyStatus.textContent = "";
    this.hasMore = Boolean(frame.has_more);
    const height = list.scrollHeight;
    const top = list.scrollTop;
    for (const message of frame.messages) {
      if (this.item(message.id)) continue;
      this.placeConfirmed(this.render(message, false), message.id);
    }
    if (this.hole) {
      // The hole shrinks from its top; it is closed once a page reaches below it.
      const lowest = frame.messages.length ? frame.messages[0].id : 0;
      if (!this.hasMore || lowest <= this.hole.after + 1) this.hole = null;
      else this.hole.before = lowest;
    }
    this.placeUnreadDivider(true);
    this.regroup();
    // Keep the reader's place: what they were reading stays where it was.
    list.scrollTop = top + (list.scrollHeight - height);
    // A live region would read out a whole page of history: it is busy meanwhile.
    requestAnimationFrame(() => list.removeAttribute("aria-busy"));
    if (this.wanted) this.show(this.wanted);
    else this.fillScreen();
  }

  // More was missed than the server replays: the newest messages follow. What is
  // on screen is older than the hole, so it goes, and paging back from the
  // replay walks through the hole and on into it again, with nothing missing.
  gap(frame) {
    if (this.detached) {
      // What was skipped is read forward from history anyway.
      this.later.clear();
      this.laterComplete = false;
      return;
    }
    this.hole = { after: Number(frame.after) || 0, before: Number(frame.before) || 0 };
    for (const item of Array.from(this.list.querySelectorAll("li.message[data-id]"))) {
      if (Number(item.dataset.id) <= this.hole.after) item.remove();
    }
    const divider = this.list.querySelector("li.unread-divider");
    if (divider) divider.remove();
    this.hasMore = true;
    this.regroup();
  }

  // The socket closed: a history page asked for will not come; ask again once back.
  lost() {
    this.loadingNewer = false;
    if (!this.loadingHistory) return;
    this.loadingHistory = false;
    this.historyStatus.textContent = "";
    this.list.removeAttribute("aria-busy");
  }

  // --- history and reading ---------------------------------------------------------------

  // Paging goes back from the oldest message shown, or while a hole is open,
  // from the hole's top (a resend acknowledged from below it may be shown above it).
  oldestId() {
    if (this.hole) return this.hole.before;
    const first = this.list.querySelector("li.message[data-id]");
    return first ? Number(first.dataset.id) : null;
  }

  loadOlder() {
    if (this.loadingHistory || !this.hasMore) return;
    const before = this.oldestId();
    if (before === null || !this.requestHistory({ before: before }, PAGE)) return;
    this.loadingHistory = true;
    this.list.setAttribute("aria-busy", "true");
    this.historyStatus.textContent = "Loading older messages…";
  }

  // With few messages nothing scrolls, so scrolling up could never ask for more.
  fillScreen() {
    if (this.detached && this.nearBottom(300)) this.loadNewer();
    if (this.hasMore && this.list.scrollHeight <= this.list.clientHeight + 40) this.loadOlder();
  }

  // --- away from the newest (a permalink) ------------------------------------------------

  keepForLater(message) {
    this.lastId = Math.max(this.lastId, message.id);
    if (this.later.size >= LATER_MAX) {
      this.later.clear();
      this.laterComplete = false;
    }
    this.later.set(message.id, message);
    this.setJump("New messages: jump to latest");
  }

  setJump(text) {
    this.jumpButton.textContent = text;
    this.jumpButton.hidden = false;
  }

  loadNewer() {
    if (this.loadingNewer || !this.detached) return;
    // Asked after every message kept so far was stored: the answer covers them.
    this.laterComplete = true;
    if (this.requestHistory({ after: this.newestShown() }, PAGE)) this.loadingNewer = true;
  }

  newer(frame) {
    this.loadingNewer = false;
    if (!this.detached) return;
    for (const message of frame.messages) {
      if (!this.item(message.id)) this.placeConfirmed(this.render(message, false), message.id);
    }
    this.regroup();
    if (frame.has_newer || !this.laterComplete) {
      if (this.nearBottom(300)) this.loadNewer();
      return;
    }
    // The pages met the live messages: what came meanwhile follows, then live as usual.
    this.attach();
  }

  attach() {
    const kept = Array.from(this.later.values()).sort((a, b) => a.id - b.id);
    this.detached = false;
    this.later.clear();
    this.jumpButton.textContent = "New messages below";
    for (const message of kept) this.message(message);
    this.pinned = this.nearBottom();
    this.jumpButton.hidden = this.pinned || !kept.length;
    this.markRead();
  }

  // Leave the permalink for the newest messages (the jump button, or sending).
  jumpToLatest() {
    if (this.detached) {
      const kept = Array.from(this.later.values()).sort((a, b) => a.id - b.id);
      for (const item of Array.from(this.list.children)) {
        if (!item.classList.contains("pending")) item.remove();
      }
      this.detached = false;
      this.jumpButton.textContent = "New messages below";
      this.later.clear();
      this.hole = null;
      this.hasMore = true;
      this.historyStatus.textContent = "";
      for (const message of kept) this.message(message);
      if (!kept.length) {
        // Nothing came since the page opened: page back from the newest.
        this.hole = { after: 0, before: this.lastId + 1 };
      }
      this.loadingHistory = false;
      this.loadOlder();
      if (history.replaceState) history.replaceState(null, "", location.pathname);
    }
    this.scrollToBottom();
  }

  markRead() {
    // Away from the newest, what is read is what was shown.
    const id = this.detached ? this.newestShown() : this.lastId;
    if (document.visibilityState !== "visible" || !id || id <= this.lastReadSent) return;
    if (this.sendRead(id)) this.lastReadSent = id;
  }

  // The tab was hidden: what was on screen has been seen; what comes next gets the divider.
  hidden() {
    this.unreadMark = Math.max(this.unreadMark, this.lastId);
  }

  // --- order, groups and dividers --------------------------------------------------------

  // Day dividers and groups follow from the messages' order and local dates.
  // regroup(from) recomputes them from the message before `from` to the end (a
  // new message is nearly always last, so that is short); regroup() does the
  // whole list, after history, deletions and out-of-order inserts. Dividers that
  // are still right are kept: a live region would announce every one re-created.
  regroup(from) {
    const list = this.list;
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
    const state = this.hasMore ? "more" : list.querySelector("li.message") ? "complete" : "empty";
    if (list.dataset.history !== state) list.dataset.history = state;
  }

  // The divider goes before the first message of someone else above the read mark.
  // Unforced, it trusts a divider that already leads into a new message: only
  // messages below it arrived since. History pages (above it) force a full look.
  placeUnreadDivider(force) {
    const list = this.list;
    const current = list.querySelector("li.unread-divider");
    const after = current && current.nextElementSibling;
    if (!force && after && isMessage(after) && !after.classList.contains("mine") && Number(after.dataset.id) > this.unreadMark) {
      return false;
    }
    let target = null;
    for (const item of list.querySelectorAll("li.message[data-id]")) {
      if (!item.classList.contains("mine") && Number(item.dataset.id) > this.unreadMark) {
        target = item;
        break;
      }
    }
    if (!target || (current && current.nextElementSibling === target)) return false;
    if (current) current.remove();
    const divider = make("li", "unread-divider");
    divider.append(make("span", "divider-label", "New messages"));
    list.insertBefore(divider, target);
    return true;
  }

  // Acknowledged messages are in id order; pending ones stay below them, last.
  placeConfirmed(element, id) {
    const list = this.list;
    // Nearly always newer than every confirmed message: it goes before the pending ones.
    let node = list.lastElementChild;
    let firstPending = null;
    while (node && (node === element || !isMessage(node) || node.classList.contains("pending"))) {
      if (node !== element && isMessage(node)) firstPending = node;
      node = node.previousElementSibling;
    }
    if (!node || !node.dataset.id || Number(node.dataset.id) < id) {
      if (element.parentNode !== list || element.nextElementSibling !== firstPending) {
        list.insertBefore(element, firstPending);
      }
      return;
    }
    let later = null;
    const items = list.querySelectorAll("li.message[data-id]");
    for (let index = items.length - 1; index >= 0; index -= 1) {
      if (items[index] === element) continue;
      if (Number(items[index].dataset.id) > id) later = items[index];
      else break;
    }
    let before;
    if (later) {
      // Keep the notes that lead into the later message attached to it.
      before = later;
      while (before.previousElementSibling && !isMessage(before.previousElementSibling)) {
        before = before.previousElementSibling;
      }
    } else {
      before = null;
      for (const item of list.querySelectorAll("li.message.pending")) {
        if (item !== element) {
          before = item;
          break;
        }
      }
    }
    if (element.parentNode === list && element.nextElementSibling === before) return;
    list.insertBefore(element, before);
  }

  // --- scrolling -------------------------------------------------------------------------

  nearBottom(margin = 80) {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < margin;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.pinned = true;
    this.jumpButton.hidden = true;
  }

  // Scrolling reads the layout, which is costly after each of a replay's
  // thousand messages: it is done once per frame instead.
  afterRender(stick, jump) {
    this.stickWanted = this.stickWanted || stick;
    this.jumpWanted = this.jumpWanted || jump;
    if (this.frameWanted) return;
    this.frameWanted = true;
    requestAnimationFrame(() => {
      this.frameWanted = false;
      if (this.stickWanted) this.scrollToBottom();
      else if (this.jumpWanted) this.jumpButton.hidden = false;
      this.stickWanted = this.jumpWanted = false;
      this.markRead();
    });
  }
}

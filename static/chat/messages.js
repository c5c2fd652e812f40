// The room's messages as the socket tells of them: what each frame does to the
// store (message-store.js, what is known) and to the list (message-list.js,
// what is on screen), older history paged in on scroll, the way back from a
// permalink to the newest, and the reader's read mark.

import { MessageList } from "./message-list.js";
import { MessageStore } from "./message-store.js";

const PAGE = 50;

export class Messages {
  // requestHistory(cursor, limit) ({before} or {after}) and sendRead(id) return true
  // if the frame went out. hasNewer: the page opened away from the newest (a permalink).
  constructor({ list, historyStatus, jumpButton, slug, me, lastId, lastRead, hasMore, hasNewer, requestHistory, sendRead }) {
    const store = new MessageStore({ me: me, lastId: lastId, lastRead: lastRead, hasMore: hasMore, hasNewer: hasNewer });
    this.store = store;
    this.list = new MessageList({ element: list, jumpButton: jumpButton, store: store, me: me, slug: slug });
    this.element = list;
    this.historyStatus = historyStatus;
    this.me = me;
    this.requestHistory = requestHistory;
    this.sendRead = sendRead;
    this.wanted = null; // a message to show once history brings it (a reply's original)
    this.list.pinned = !store.detached;
    this.frameWanted = false;
    this.stickWanted = false;
    this.jumpWanted = false;

    list.addEventListener("scroll", () => {
      this.list.pinned = this.list.nearBottom() && !store.detached;
      if (this.list.pinned) jumpButton.hidden = true;
      if (list.scrollTop < 150) this.loadOlder();
      if (store.detached && this.list.nearBottom(300)) this.loadNewer();
    }, { passive: true });
  }

  // The messages the server put in the page, and where the reader starts.
  // around: the message a permalink names, shown and lit up instead of the newest.
  start(around) {
    const element = this.element;
    element.setAttribute("aria-busy", "true");
    this.list.renderPageItems();
    this.list.placeUnreadDivider(true);
    this.list.regroup();
    if (around) this.showAround(around);
    else this.list.scrollToStart();
    requestAnimationFrame(() => element.removeAttribute("aria-busy"));
  }

  // The newest message of mine still on screen, for ↑ in an empty composer.
  lastOfMine() {
    const id = this.store.lastOfMine();
    return id === null ? null : this.list.item(id);
  }

  // Scroll to a message and light it up, paging in older history until it is there.
  show(id) {
    const item = this.list.item(id);
    if (item) {
      this.list.highlight(item);
      this.wanted = null;
      return;
    }
    const oldest = this.store.oldestId();
    if (!this.store.hasMore || (oldest !== null && oldest <= id)) return; // deleted meanwhile
    this.wanted = id;
    this.loadOlder();
  }

  // A permalink's message, or the first after where it was (deleted, or never was).
  showAround(id) {
    if (this.store.detached) this.list.jump("Jump to latest", true);
    let found = id;
    if (!this.store.has(id)) {
      found = this.store.after(id);
      this.historyStatus.textContent = "That message was deleted, or never was: here is where it would be.";
    }
    if (found !== null) this.show(found);
  }

  // --- what arrives ----------------------------------------------------------------------

  // A message of mine, shown at once and marked as sending until acknowledged.
  addPending(clientId, body, reply, attachments) {
    const message = { user: this.me, body: body, created: new Date().toISOString(), reply_to: reply, attachments: attachments };
    this.list.addPending(clientId, message);
    this.list.regroup();
    this.list.scrollToBottom();
  }

  // What the messages still on their way say under them ("Sending…", or the wait
  // for a rate limit), all alike: they go in the order they were written.
  pendingStatus(text) {
    this.list.pendingStatus(text);
  }

  // Refused for good: it stays, marked as not sent.
  failed(clientId) {
    if (this.list.failed(clientId)) this.list.regroup();
  }

  // A `message` frame: new, the acknowledgement of a pending one, or one already shown.
  message(message) {
    const store = this.store;
    if (store.detached) {
      store.keepForLater(message);
      this.list.jump("New messages: jump to latest", true);
      return;
    }
    const waiting = message.client_id ? this.list.takePending(message.client_id) : null;
    let element = null;
    if (store.has(message.id)) {
      // A resend's stored copy, or a replay of what is on screen: show it once.
      if (!waiting) return;
      waiting.remove();
    } else {
      // In place of the pending one, the server's rendering of it: its time,
      // mentions and reply as stored.
      element = this.list.insert(message, waiting);
    }
    store.lastId = Math.max(store.lastId, message.id);

    let moved = false;
    if (message.user !== this.me) {
      if (document.visibilityState !== "visible") {
        moved = this.list.placeUnreadDivider();
      } else if (!this.list.unreadDivider()) {
        // Read as it arrives: no divider appears above it later.
        store.seen(message.id);
      }
    }
    if (moved || !element) this.list.regroup();
    else this.list.regroup(element);
    this.afterRender(this.list.pinned || message.user === this.me, message.user !== this.me);
  }

  edited(frame) {
    this.list.edited(frame);
  }

  deleted(frame) {
    this.store.deleted(frame.id);
    this.list.deleted(frame);
  }

  reactions(frame) {
    if (this.store.reacted(frame.id, frame.version)) this.list.reactions(frame);
  }

  history(frame) {
    // A forward page (the answer to {after}) says has_newer and nothing of older ones.
    if ("has_newer" in frame && !("has_older" in frame)) {
      this.newer(frame);
      return;
    }
    this.historyStatus.textContent = "";
    this.store.paged(frame);
    this.list.keepingPlace(() => {
      for (const message of frame.messages) {
        if (!this.store.has(message.id)) this.list.insert(message, null);
      }
      this.list.placeUnreadDivider(true);
      this.list.regroup();
    });
    // A live region would read out a whole page of history: it is busy meanwhile.
    requestAnimationFrame(() => this.element.removeAttribute("aria-busy"));
    if (this.wanted) this.show(this.wanted);
    else this.fillScreen();
  }

  // More was missed than the server replays: the newest messages follow. What is
  // on screen is older than the hole, so it goes, and paging back from the
  // replay walks through the hole and on into it again, with nothing missing.
  gap(frame) {
    if (this.store.detached) {
      // What was skipped is read forward from history anyway.
      this.store.forgetLater();
      return;
    }
    for (const id of this.store.openHole(Number(frame.after) || 0, Number(frame.before) || 0)) this.list.remove(id);
    const divider = this.list.unreadDivider();
    if (divider) divider.remove();
    this.list.regroup();
  }

  // The socket closed: a history page asked for will not come; ask again once back.
  lost() {
    if (!this.store.lost()) return;
    this.historyStatus.textContent = "";
    this.element.removeAttribute("aria-busy");
  }

  // --- history and reading ---------------------------------------------------------------

  loadOlder() {
    const store = this.store;
    if (store.loadingHistory || !store.hasMore) return;
    const before = store.oldestId();
    if (before === null || !this.requestHistory({ before: before }, PAGE)) return;
    store.loadingHistory = true;
    this.element.setAttribute("aria-busy", "true");
    this.historyStatus.textContent = "Loading older messages…";
  }

  // With few messages nothing scrolls, so scrolling up could never ask for more.
  fillScreen() {
    if (this.store.detached && this.list.nearBottom(300)) this.loadNewer();
    if (this.store.hasMore && this.element.scrollHeight <= this.element.clientHeight + 40) this.loadOlder();
  }

  markRead() {
    const id = this.store.readToSend();
    if (document.visibilityState !== "visible" || !id) return;
    if (this.sendRead(id)) this.store.lastReadSent = id;
  }

  // The tab was hidden: what was on screen has been seen; what comes next gets the divider.
  hidden() {
    this.store.seen(this.store.lastId);
  }

  // --- away from the newest (a permalink) ------------------------------------------------

  loadNewer() {
    const store = this.store;
    if (store.loadingNewer || !store.detached) return;
    // Asked after every message kept so far was stored: the answer covers them.
    store.laterComplete = true;
    if (this.requestHistory({ after: store.newestShown() }, PAGE)) store.loadingNewer = true;
  }

  newer(frame) {
    const store = this.store;
    store.loadingNewer = false;
    if (!store.detached) return;
    for (const message of frame.messages) {
      if (!store.has(message.id)) this.list.insert(message, null);
    }
    this.list.regroup();
    if (frame.has_newer || !store.laterComplete) {
      if (this.list.nearBottom(300)) this.loadNewer();
      return;
    }
    // The pages met the live messages: what came meanwhile follows, then live as usual.
    this.attach();
  }

  attach() {
    const kept = this.store.attach();
    for (const message of kept) this.message(message);
    this.list.pinned = this.list.nearBottom();
    this.list.jump("New messages below", !this.list.pinned && kept.length > 0);
    this.markRead();
  }

  // Leave the permalink for the newest messages (the jump button, or sending).
  jumpToLatest() {
    const store = this.store;
    if (store.detached) {
      const kept = store.attach();
      this.list.removeConfirmed();
      store.forgetShown();
      this.list.jump("New messages below", false);
      this.historyStatus.textContent = "";
      for (const message of kept) this.message(message);
      // Nothing came since the page opened: page back from the newest.
      if (!kept.length) store.openHole(0, store.lastId + 1);
      this.loadOlder();
      if (history.replaceState) history.replaceState(null, "", location.pathname);
    }
    this.list.scrollToBottom();
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
      if (this.stickWanted) this.list.scrollToBottom();
      else if (this.jumpWanted) this.list.jump(null, true);
      this.stickWanted = this.jumpWanted = false;
      this.markRead();
    });
  }
}

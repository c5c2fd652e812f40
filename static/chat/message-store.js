// What the room's page knows of its messages, without the DOM: the messages
// shown, by id and in id order; how far back history goes and the hole a long
// absence left in it; the history pages asked for and not yet answered; and,
// away from the newest (a permalink), the live messages kept for later. The
// list (message-list.js) asks it where a message goes and what to ask the
// server for next, and draws what follows.

// Live messages kept while the reader is away from the newest (a permalink);
// past this many the page reads them from history instead.
const LATER_MAX = 2000;

export class MessageStore {
  // me: the reader. lastId: the newest message the page was sent; lastRead: the
  // reader's read mark; hasMore: older history exists; hasNewer: the page opened
  // away from the newest (a permalink).
  constructor({ me, lastId, lastRead, hasMore, hasNewer }) {
    this.me = me;
    // id -> what the list decides by: author, deleted, and the reactions' version.
    this.shown = new Map();
    this.ids = []; // the same, ascending: the order of the list
    this.lastId = lastId;
    // Messages of others above this number are new to the reader: the unread divider.
    this.unreadMark = lastRead;
    this.lastReadSent = 0;
    this.hasMore = hasMore;
    this.hole = null; // {after, before}: ids not replayed after a long absence (gap), until paged in
    this.loadingHistory = false; // an older page was asked for
    this.loadingNewer = false; // a newer page was asked for (away from the newest)
    // Away from the newest (a permalink): newer messages are paged in forward as the
    // reader scrolls down, and live ones wait in `later` (by id) until the pages meet them.
    this.detached = Boolean(hasNewer);
    this.later = new Map();
    this.laterComplete = true; // false once `later` overflowed or a gap skipped some
  }

  // --- the messages shown ----------------------------------------------------------------

  has(id) {
    return this.shown.has(Number(id));
  }

  // Where in `ids` the first id above `id` is (ids.length when none is).
  indexAfter(id) {
    const ids = this.ids;
    // A new message is nearly always the newest.
    if (!ids.length || ids[ids.length - 1] <= id) return ids.length;
    let low = 0;
    let high = ids.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (ids[middle] <= id) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  // The first message shown after `id`, or null.
  after(id) {
    const at = this.indexAfter(id);
    return at < this.ids.length ? this.ids[at] : null;
  }

  // A confirmed message joins what is shown. Returns the id it goes before, or
  // null when it is the newest (it goes before the pending ones).
  add(message) {
    const id = Number(message.id);
    const at = this.indexAfter(id);
    this.ids.splice(at, 0, id);
    this.shown.set(id, { user: message.user, deleted: false, reactionsVersion: 0 });
    return at + 1 < this.ids.length ? this.ids[at + 1] : null;
  }

  oldestShown() {
    return this.ids.length ? this.ids[0] : null;
  }

  newestShown() {
    return this.ids.length ? this.ids[this.ids.length - 1] : 0;
  }

  // The newest message of mine still shown and not deleted, or null.
  lastOfMine() {
    for (let index = this.ids.length - 1; index >= 0; index -= 1) {
      const message = this.shown.get(this.ids[index]);
      if (message.user === this.me && !message.deleted) return this.ids[index];
    }
    return null;
  }

  // The first message of someone else above the read mark, or null.
  firstUnread() {
    for (let index = this.indexAfter(this.unreadMark); index < this.ids.length; index += 1) {
      if (this.shown.get(this.ids[index]).user !== this.me) return this.ids[index];
    }
    return null;
  }

  deleted(id) {
    const message = this.shown.get(Number(id));
    if (message) message.deleted = true;
  }

  // True when the reactions a frame brings are to be shown: broadcasts from two
  // workers may cross, and the newest version wins.
  reacted(id, version) {
    const message = this.shown.get(Number(id));
    if (!message || message.deleted) return false;
    if (Number(version) < Number(message.reactionsVersion)) return false;
    message.reactionsVersion = version;
    return true;
  }

  // --- history ---------------------------------------------------------------------------

  // Paging goes back from the oldest message shown, or while a hole is open,
  // from the hole's top (a resend acknowledged from below it may be shown above it).
  oldestId() {
    return this.hole ? this.hole.before : this.oldestShown();
  }

  // An older page came (it is shown next).
  paged(frame) {
    this.loadingHistory = false;
    this.hasMore = Boolean(frame.has_more);
    if (this.hole) {
      // The hole shrinks from its top; it is closed once a page reaches below it.
      const lowest = frame.messages.length ? frame.messages[0].id : 0;
      if (!this.hasMore || lowest <= this.hole.after + 1) this.hole = null;
      else this.hole.before = lowest;
    }
  }

  // More was missed than the server replays (a gap), or the reader went back to
  // the newest from a permalink: history is paged back through the hole. What is
  // shown at or below its bottom is forgotten; returns those ids.
  openHole(after, before) {
    this.hole = { after: after, before: before };
    this.hasMore = true;
    const gone = this.ids.splice(0, this.indexAfter(after));
    for (const id of gone) this.shown.delete(id);
    return gone;
  }

  // The socket closed: the pages asked for will not come. True if an older one was awaited.
  lost() {
    this.loadingNewer = false;
    const waited = this.loadingHistory;
    this.loadingHistory = false;
    return waited;
  }

  // --- away from the newest (a permalink) ------------------------------------------------

  keepForLater(message) {
    this.lastId = Math.max(this.lastId, message.id);
    if (this.later.size >= LATER_MAX) this.forgetLater();
    this.later.set(message.id, message);
  }

  // What was kept is read forward from history instead.
  forgetLater() {
    this.later.clear();
    this.laterComplete = false;
  }

  // Back to following the newest: what was kept, in id order, to be shown as live.
  attach() {
    const kept = Array.from(this.later.values()).sort((a, b) => a.id - b.id);
    this.detached = false;
    this.later.clear();
    return kept;
  }

  // Leaving a permalink for the newest: nothing shown is kept, and history is
  // paged back again from what comes.
  forgetShown() {
    this.shown.clear();
    this.ids = [];
    this.hole = null;
    this.hasMore = true;
    this.loadingHistory = false;
  }

  // --- reading ---------------------------------------------------------------------------

  // The read mark to send, or 0 when it was sent. Away from the newest, what is
  // read is what was shown.
  readToSend() {
    const id = this.detached ? this.newestShown() : this.lastId;
    return id && id > this.lastReadSent ? id : 0;
  }

  // What is seen up to `id` gets no unread divider later.
  seen(id) {
    this.unreadMark = Math.max(this.unreadMark, id);
  }
}

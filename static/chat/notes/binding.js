// A <textarea> bound to a Y.Text, both ways, and the other editors' carets
// and selections drawn behind it.
//
// Typing becomes the smallest edit of the Y.Text that turns what was shown
// into what is shown now (found around the caret, so that typing "a" in "aa"
// inserts where the caret is). Remote edits reach the box with the caret and
// the selection carried over them: text inserted at the caret goes after it,
// so that two people typing at one place do not leapfrog letter by letter.
// While an input method composes, remote edits wait (replacing the value would
// break the composition) and the composed text is moved over them when it ends.
//
// Carets travel in awareness as Yjs relative positions, which stay attached to
// the characters they were next to whatever happens around them. They are drawn
// in a mirror of the box: the same text, in the same font and wrapping, but
// transparent, under a transparent textarea, with a bar and a name at each
// caret and a tint over each selection. Everything reaches the DOM as text nodes.

import * as Y from "../vendor/yjs/yjs.js";
import { avatarColor, make } from "../dom.js";

// Where `index` (a position in the text before a change) lands after it. An
// insertion exactly at `index` goes after it.
export function transformIndex(index, delta) {
  let position = 0; // in the old text
  let shift = 0;
  for (const op of delta) {
    if (position > index) break;
    if (op.retain !== undefined) {
      position += op.retain;
    } else if (op.insert !== undefined) {
      const length = typeof op.insert === "string" ? op.insert.length : 1;
      if (position < index) shift += length;
    } else if (op.delete !== undefined) {
      const end = position + op.delete;
      shift -= Math.max(0, Math.min(end, index) - position);
      position = end;
    }
  }
  return Math.max(0, index + shift);
}

function isHighSurrogate(code) {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code) {
  return code >= 0xdc00 && code <= 0xdfff;
}

// The one edit that turns `before` into `after`: {index, remove, insert}. `caret`
// (where the caret is in `after`) says where the edit ends when the text alone
// cannot: typing "a" after "aa" inserts at the caret, not at the start. Never
// splits a surrogate pair.
export function textDiff(before, after, caret) {
  const grown = after.length - before.length;
  let suffix = 0;
  const suffixLimit = Math.min(before.length, after.length);
  // The changed part of `after` ends at the caret when the caret can be there.
  const caretLimit = caret !== undefined && caret - grown >= 0 && caret <= after.length ? after.length - caret : suffixLimit;
  while (
    suffix < Math.min(suffixLimit, caretLimit) &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix += 1;
  }
  let prefix = 0;
  const prefixLimit = Math.min(before.length, after.length) - suffix;
  while (prefix < prefixLimit && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix += 1;
  if (prefix > 0 && isHighSurrogate(before.charCodeAt(prefix - 1))) prefix -= 1;
  if (suffix > 0 && isLowSurrogate(before.charCodeAt(before.length - suffix))) suffix -= 1;
  return {
    index: prefix,
    remove: before.length - prefix - suffix,
    insert: after.slice(prefix, after.length - suffix),
  };
}

export class TextareaBinding {
  // ytext: the Y.Text; textarea; mirror: the element behind it that shows the
  // others' carets; awareness: the document's; me: this reader's name.
  constructor({ ytext, textarea, mirror, awareness, me }) {
    this.ytext = ytext;
    this.doc = ytext.doc;
    this.textarea = textarea;
    this.mirror = mirror;
    this.awareness = awareness;
    this.composing = false;
    this.waiting = []; // remote deltas held while an input method composes
    this.shown = ytext.toString();
    this.cursorFrame = 0;
    this.renderFrame = 0;
    textarea.value = this.shown;

    awareness.setLocalStateField("user", { name: me, color: avatarColor(me) });

    this.onObserve = (event, transaction) => {
      if (transaction.origin === this) return;
      if (this.composing) this.waiting.push(event.delta);
      else this.remote([event.delta]);
    };
    this.onInput = () => {
      if (!this.composing) this.local();
    };
    this.onCompositionStart = () => {
      this.composing = true;
    };
    this.onCompositionEnd = () => {
      this.composing = false;
      this.local();
    };
    this.onSelection = () => {
      if (document.activeElement === textarea) this.cursorSoon();
    };
    this.onBlur = () => this.cursorSoon();
    this.onScroll = () => {
      mirror.scrollTop = textarea.scrollTop;
      mirror.scrollLeft = textarea.scrollLeft;
    };
    this.onAwareness = () => this.drawSoon();
    this.onResize = () => this.drawSoon();

    ytext.observe(this.onObserve);
    textarea.addEventListener("input", this.onInput);
    textarea.addEventListener("compositionstart", this.onCompositionStart);
    textarea.addEventListener("compositionend", this.onCompositionEnd);
    textarea.addEventListener("select", this.onSelection);
    textarea.addEventListener("keyup", this.onSelection);
    textarea.addEventListener("focus", this.onSelection);
    textarea.addEventListener("blur", this.onBlur);
    textarea.addEventListener("scroll", this.onScroll);
    document.addEventListener("selectionchange", this.onSelection);
    awareness.on("change", this.onAwareness);
    this.resizeObserver = typeof ResizeObserver === "function" ? new ResizeObserver(this.onResize) : null;
    if (this.resizeObserver) this.resizeObserver.observe(textarea);
    this.draw();
  }

  destroy() {
    this.ytext.unobserve(this.onObserve);
    const textarea = this.textarea;
    textarea.removeEventListener("input", this.onInput);
    textarea.removeEventListener("compositionstart", this.onCompositionStart);
    textarea.removeEventListener("compositionend", this.onCompositionEnd);
    textarea.removeEventListener("select", this.onSelection);
    textarea.removeEventListener("keyup", this.onSelection);
    textarea.removeEventListener("focus", this.onSelection);
    textarea.removeEventListener("blur", this.onBlur);
    textarea.removeEventListener("scroll", this.onScroll);
    document.removeEventListener("selectionchange", this.onSelection);
    this.awareness.off("change", this.onAwareness);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    cancelAnimationFrame(this.cursorFrame);
    cancelAnimationFrame(this.renderFrame);
  }

  // --- the reader's own edits --------------------------------------------------------------

  local() {
    const value = this.textarea.value;
    if (value === this.shown) return;
    const edit = textDiff(this.shown, value, this.textarea.selectionEnd);
    let start = edit.index;
    let end = edit.index + edit.remove;
    const waiting = this.waiting;
    this.waiting = [];
    // Edits that arrived while composing moved the text under the box: carry the
    // edit over them. What they deleted from inside its range stays deleted.
    for (const delta of waiting) {
      start = transformIndex(start, delta);
      end = Math.max(start, transformIndex(end, delta));
    }
    this.doc.transact(() => {
      if (end > start) this.ytext.delete(start, end - start);
      if (edit.insert) this.ytext.insert(start, edit.insert);
    }, this);
    if (waiting.length) {
      const caret = start + edit.insert.length;
      this.show(this.ytext.toString(), caret, caret);
    } else {
      this.shown = value;
    }
    this.cursorSoon();
    this.drawSoon();
  }

  // --- the others' edits ---------------------------------------------------------------------

  remote(deltas) {
    const textarea = this.textarea;
    let start = textarea.selectionStart;
    let end = textarea.selectionEnd;
    for (const delta of deltas) {
      start = transformIndex(start, delta);
      end = transformIndex(end, delta);
    }
    this.show(this.ytext.toString(), start, end);
    this.drawSoon();
  }

  // Put text in the box, keeping the selection (and its direction) and the scroll.
  show(text, start, end) {
    const textarea = this.textarea;
    const direction = textarea.selectionDirection;
    const focused = document.activeElement === textarea;
    const scrollTop = textarea.scrollTop;
    textarea.value = text;
    this.shown = text;
    if (focused) textarea.setSelectionRange(Math.min(start, text.length), Math.min(end, text.length), direction);
    textarea.scrollTop = scrollTop;
  }

  // Someone else's copy of the document replaced this one (a reset from the server):
  // show it, keeping the caret where the same offset is.
  replaced() {
    this.waiting = [];
    this.show(this.ytext.toString(), this.textarea.selectionStart, this.textarea.selectionEnd);
    this.drawSoon();
  }

  // --- carets in awareness -------------------------------------------------------------------

  cursorSoon() {
    cancelAnimationFrame(this.cursorFrame);
    this.cursorFrame = requestAnimationFrame(() => this.publishCursor());
  }

  publishCursor() {
    const textarea = this.textarea;
    if (document.activeElement !== textarea) {
      if (this.awareness.getLocalState() && this.awareness.getLocalState().cursor) {
        this.awareness.setLocalStateField("cursor", null);
      }
      return;
    }
    const anchorIndex = textarea.selectionDirection === "backward" ? textarea.selectionEnd : textarea.selectionStart;
    const headIndex = textarea.selectionDirection === "backward" ? textarea.selectionStart : textarea.selectionEnd;
    const relative = (index) => Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(this.ytext, index));
    const cursor = { anchor: relative(anchorIndex), head: relative(headIndex) };
    const current = (this.awareness.getLocalState() || {}).cursor;
    if (current && JSON.stringify(current) === JSON.stringify(cursor)) return;
    this.awareness.setLocalStateField("cursor", cursor);
  }

  // Every other editor's caret and selection, as offsets in the text shown.
  remoteCursors() {
    const cursors = [];
    this.awareness.getStates().forEach((state, clientId) => {
      if (clientId === this.doc.clientID || !state || !state.cursor || !state.user) return;
      const anchor = this.absolute(state.cursor.anchor);
      const head = this.absolute(state.cursor.head);
      if (anchor === null || head === null) return;
      cursors.push({
        clientId: clientId,
        name: String(state.user.name || "?"),
        from: Math.min(anchor, head),
        to: Math.max(anchor, head),
        head: head,
      });
    });
    return cursors;
  }

  absolute(json) {
    try {
      const position = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(json), this.doc);
      if (!position || position.type !== this.ytext) return null;
      return Math.min(position.index, this.shown.length);
    } catch (error) {
      return null;
    }
  }

  // --- the mirror ------------------------------------------------------------------------------

  drawSoon() {
    cancelAnimationFrame(this.renderFrame);
    this.renderFrame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    const text = this.shown;
    const cursors = this.remoteCursors();
    // Cut the text at every selection's ends and every caret.
    const cuts = new Set([0, text.length]);
    for (const cursor of cursors) {
      cuts.add(cursor.from);
      cuts.add(cursor.to);
    }
    const points = Array.from(cuts).sort((a, b) => a - b);
    const pieces = [];
    for (let i = 0; i < points.length; i += 1) {
      const at = points[i];
      for (const cursor of cursors) {
        if (cursor.head === at) pieces.push(this.caret(cursor));
      }
      const next = points[i + 1];
      if (next === undefined || next === at) continue;
      const slice = text.slice(at, next);
      const selecting = cursors.filter((cursor) => cursor.from <= at && next <= cursor.to && cursor.from < cursor.to);
      if (selecting.length) {
        const mark = make("span", "notes-selection", slice);
        mark.dataset.tint = avatarColor(selecting[0].name);
        pieces.push(mark);
      } else {
        pieces.push(document.createTextNode(slice));
      }
    }
    // A trailing newline needs something after it to take up its line.
    pieces.push(document.createTextNode("\u200b"));
    this.mirror.replaceChildren(...pieces);
    this.mirror.scrollTop = this.textarea.scrollTop;
    this.mirror.scrollLeft = this.textarea.scrollLeft;
  }

  caret(cursor) {
    const caret = make("span", "notes-caret");
    caret.dataset.color = avatarColor(cursor.name);
    caret.dataset.client = String(cursor.clientId);
    const label = make("span", "notes-caret-name", cursor.name);
    label.dataset.color = caret.dataset.color;
    caret.append(label);
    return caret;
  }
}

// The composer: the message box, its counter, Enter to send, and the line
// under it that says in words why something was refused.

import { codePoints, plural } from "./dom.js";

const COUNT_FROM_LEFT = 500; // the counter shows from this many characters before the limit
const TYPING_EVERY = 2000;

export class Composer {
  // maxLength: the server's limit, in code points of the body without surrounding
  // space; onSubmit(body): a message to send; onTyping(): true if it was told;
  // onKey(event): true if another part of the page took the key (completion, ↑);
  // files(): {count, busy}: files uploaded for the message, and whether any is
  // still on its way (a message of files alone may have no text).
  constructor({ form, input, sendButton, charCount, errorLine, maxLength, onSubmit, onTyping, onKey, files }) {
    this.files = files || (() => ({ count: 0, busy: false }));
    this.input = input;
    this.sendButton = sendButton;
    this.charCount = charCount;
    this.errorLine = errorLine;
    this.maxLength = maxLength;
    this.onSubmit = onSubmit;
    this.onTyping = onTyping;
    this.locked = false;
    this.lastTypingSent = 0;
    this.errorTimer = null;
    this.words = {
      too_long: "That message is too long: " + maxLength + " characters at most.",
      empty: "That message is empty: type something first.",
      room_archived: "This room is archived: you can read it, but no longer post in it.",
      forbidden: "You are not allowed to do that.",
      not_found: "That message no longer exists.",
      bad_request: "The server could not read that. Reload the page and try again.",
      unavailable: "The server cannot take messages right now. Try again in a moment.",
      bad_attachment: "A file could not be attached: it is gone (uploads are kept a day). Attach it again.",
      uploading: "Wait a moment: the files are still uploading.",
    };

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (onKey(event)) return;
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (!sendButton.disabled) this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.update();
      this.autoSize();
      const now = Date.now();
      if (input.value.trim() && now - this.lastTypingSent > TYPING_EVERY && this.onTyping()) {
        this.lastTypingSent = now;
      }
    });
    this.update();
    this.autoSize();
  }

  setLocked(locked) {
    this.locked = locked;
    this.input.disabled = locked;
    this.update();
  }

  update() {
    const length = codePoints(this.input.value.trim());
    const left = this.maxLength - length;
    let text = "";
    if (left <= COUNT_FROM_LEFT) {
      text = left >= 0 ? plural(left, "character") + " left" : plural(-left, "character") + " over the limit";
    }
    if (this.charCount.textContent !== text) this.charCount.textContent = text;
    this.charCount.classList.toggle("over", left < 0);
    if (left < 0) this.input.setAttribute("aria-invalid", "true");
    else this.input.removeAttribute("aria-invalid");
    const files = this.files();
    this.sendButton.disabled = this.locked || left < 0 || files.busy;
    this.sendButton.title = files.busy ? this.words.uploading : "";
  }

  // The box grows with its text up to a limit set in the style sheet, then scrolls.
  autoSize() {
    this.input.style.height = "auto";
    this.input.style.height = this.input.scrollHeight + "px";
  }

  submit() {
    if (this.locked) return;
    const body = this.input.value.trim();
    const files = this.files();
    if (files.busy) {
      this.showError("uploading", this.words.uploading);
      return;
    }
    if (!body && !files.count) {
      this.input.focus();
      return;
    }
    if (codePoints(body) > this.maxLength) {
      this.showError("too_long", this.words.too_long);
      return;
    }
    this.clearError();
    this.input.value = "";
    this.update();
    this.autoSize();
    this.onSubmit(body);
  }

  // --- refusals in words -----------------------------------------------------------------

  clearError() {
    clearInterval(this.errorTimer);
    this.errorLine.textContent = "";
    delete this.errorLine.dataset.code;
  }

  showError(code, text) {
    clearInterval(this.errorTimer);
    this.errorLine.dataset.code = code;
    this.errorLine.textContent = text;
  }

  // A wait the page is sitting out before it sends again by itself.
  retrying() {
    const code = this.errorLine.dataset.code;
    return code === "rate_limited" || code === "unavailable";
  }

  // "Wait 3 s", counting down, so the reader knows when the message will go;
  // onTick(seconds left, 0 when it goes) says it elsewhere too (under the messages).
  showWait(seconds, prefix, onTick) {
    const until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(this.errorTimer);
        this.errorLine.textContent = prefix + " Sending now…";
        if (onTick) onTick(0);
        return;
      }
      this.errorLine.textContent = prefix + " Sending again in " + left + " s.";
      if (onTick) onTick(left);
    };
    this.showError("rate_limited", "");
    tick();
    this.errorTimer = setInterval(tick, 500);
  }

  showRefusal(frame) {
    let text;
    if (frame.code === "muted") text = muteWords(muteFromDetail(frame.detail));
    else if (frame.code === "rate_limited") {
      text = "You are sending messages too fast. Wait " + Math.ceil(Number(frame.retry_after) || 1) + " s.";
    } else text = this.words[frame.code] || frame.detail || "Something went wrong (" + frame.code + ").";
    this.showError(frame.code, text);
  }
}

// A mute as the wire has it ({scope: "room" | "all", until: ISO time or null}), in words.
export function muteWords(mute) {
  const where = mute && mute.scope === "all" ? "in every room" : "in this room";
  const until = mute && mute.until ? new Date(mute.until) : null;
  let text = "You are muted " + where;
  if (until && !isNaN(until.getTime())) {
    text += " until " + until.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  return text + ": you can read, but not post.";
}

// The mute a `muted` refusal names in its detail ("you are muted in every room until …Z").
export function muteFromDetail(detail) {
  const text = detail || "";
  const match = /until (\S+)/.exec(text);
  return { scope: /every room/.test(text) ? "all" : "room", until: match ? match[1] : null };
}

// One message as DOM. renderMessage() is the one place that turns a message
// object into an element, for history, live messages and those the server put
// in the page alike; the rest are the changes a message takes in place (an
// edit, its deletion, reactions, how its delivery goes, the box that edits it).
// A body is built as nodes by format.js, never parsed as HTML. Where a message
// goes in the list is message-list.js's business, not this module's.

import { renderAttachments } from "./attachments.js";
import { avatar, make, setTime } from "./dom.js";
import { renderBody } from "./format.js";

// A body longer than this (characters or lines) is folded behind "Show more".
const FOLD_CHARACTERS = 700;
const FOLD_LINES = 12;

// The link to one message: the room opened at it (docs/protocol.md, Permalinks).
function permalink(slug, id) {
  return "/rooms/" + encodeURIComponent(slug) + "/?around=" + Number(id);
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

// A reply's quote of an original that was edited: its new first line.
export function quoteEdited(quote, body) {
  renderBody(quote.querySelector(".reply-body"), body.split("\n", 1)[0], []);
}

// A reply's quote of an original that was deleted.
export function quoteDeleted(quote) {
  quote.classList.add("deleted");
  quote.querySelector(".reply-body").textContent = "Deleted message";
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

export function showReactions(item, reactions, me) {
  renderReactions(item.querySelector(".reactions"), reactions, me);
}

// Long bodies fold to a few lines, with a button to unfold them (and fold again).
// The button goes after the body, so the body must already be in its message.
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

// The body keeps its source text: editing and replying start from it, not from
// what the formatting made of it.
function setBody(body, text, mentions) {
  body.dataset.source = text;
  renderBody(body, text, mentions);
  // A message of files alone has no text to show.
  body.hidden = !text;
  foldLong(body);
}

// What is said under a message on its way ("Sending…", a wait) or refused; none for "".
export function setDelivery(item, text) {
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

// me: the reader, whose messages are marked as theirs; slug: the room, for permalinks.
// A pending message (mine, not yet acknowledged) has no id and so no link.
export function renderMessage(message, { me, slug, pending }) {
  const item = make("li", "message");
  if (message.user === me) item.classList.add("mine");
  if (pending) item.classList.add("pending");
  if (message.id) item.dataset.id = String(message.id);
  item.dataset.author = message.user;

  const meta = make("div", "message-meta");
  const time = document.createElement("time");
  setTime(time, message.created);
  let when = time;
  if (message.id) {
    // Every message's time is its link (a permalink).
    when = make("a", "permalink");
    when.href = permalink(slug, message.id);
    when.append(time);
  }
  meta.append(make("span", "author", message.user), " ", when);
  if (message.edited) meta.append(" ", editedMark());

  const main = make("div", "message-main");
  main.append(meta);
  if (message.reply_to) main.append(replyQuote(message.reply_to));
  const body = make("div", "body");
  const files = make("div", "attachments");
  renderAttachments(files, message.attachments);
  const reactions = make("div", "reactions");
  renderReactions(reactions, message.reactions, me);
  main.append(body, files, reactions);
  setBody(body, message.body, message.mentions);
  const actions = make("button", "message-actions", "⋯");
  actions.type = "button";
  actions.setAttribute("aria-haspopup", "menu");
  actions.setAttribute("aria-label", "Actions for this message");
  item.append(avatar(message.user), main, actions);
  if (pending) setDelivery(item, "Sending…");
  return item;
}

// A `message.edited` frame, on the message's element.
export function showEdited(item, frame) {
  setBody(item.querySelector(".body"), frame.body, frame.mentions);
  if (!item.querySelector(".edited")) item.querySelector(".message-meta").append(" ", editedMark());
}

// A tombstone where the message was: what could be done with it goes too.
export function showDeleted(item) {
  item.classList.add("deleted");
  const body = item.querySelector(".body");
  body.replaceChildren("This message was deleted.");
  body.hidden = false;
  delete body.dataset.source;
  for (const gone of item.querySelectorAll(".reactions, .attachments, .reply-quote, .message-actions, .edited")) gone.remove();
}

// The message's text in a box where its body was, edited in place.
// save(text) gets a changed text and returns false to keep the box open (it was not sent).
export function editInPlace(item, save) {
  if (!item || item.classList.contains("editing")) return;
  const body = item.querySelector(".body");
  const source = body.dataset.source || body.textContent;
  const form = make("form", "edit-form");
  const box = make("textarea", "edit-box");
  box.value = source;
  box.setAttribute("aria-label", "Edit your message");
  const saveButton = make("button", "", "Save");
  saveButton.type = "submit";
  const cancel = make("button", "link-button", "Cancel");
  cancel.type = "button";
  form.append(box, saveButton, cancel);
  item.classList.add("editing");
  body.hidden = true;
  body.after(form);
  const done = () => {
    form.remove();
    // A message of files alone has no text to show again.
    body.hidden = !(body.dataset.source || body.textContent);
    item.classList.remove("editing");
    const actions = item.querySelector(".message-actions");
    if (actions) actions.focus();
  };
  const submit = () => {
    const text = box.value.trim();
    if (text && text !== source && !save(text)) return;
    done();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  cancel.addEventListener("click", done);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      done();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

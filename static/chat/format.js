// Light formatting of a message body, built as DOM nodes and text nodes only:
// http(s) links, **bold**, _italic_, `code`, ``` fenced code blocks ```, and
// @mentions of the members the server found. The body itself is never parsed
// as HTML, and is stored and served exactly as sent.

import { make } from "./dom.js";

const FENCE = /```[^\n`]*\n?([\s\S]*?)```/g;
// One inline token at a time, the earliest first: code, bold, italic, a link, a mention.
const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+?\*\*)|((?<![\w])_[^_\n]+?_(?![\w]))|(https?:\/\/[^\s<>"]+)|((?<![\w@.+-])@[\w.@+-]+)/g;
// Punctuation that ends a sentence rather than a URL.
const TRAILING = /[.,:;!?'")\]]+$/;

export function link(url) {
  const anchor = make("a", "", url);
  anchor.href = url;
  anchor.rel = "noopener noreferrer nofollow";
  anchor.target = "_blank";
  return anchor;
}

function inline(parent, text, mentions) {
  let at = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > at) parent.append(text.slice(at, match.index));
    const [whole, code, bold, italic, url, mention] = match;
    let end = match.index + whole.length;
    if (code) parent.append(make("code", "", code.slice(1, -1)));
    else if (bold) parent.append(make("strong", "", bold.slice(2, -2)));
    else if (italic) parent.append(make("em", "", italic.slice(1, -1)));
    else if (url) {
      const tail = TRAILING.exec(url);
      const clean = tail ? url.slice(0, -tail[0].length) : url;
      end = match.index + clean.length;
      parent.append(link(clean));
    } else if (mention) {
      let name = mention.slice(1);
      if (!mentions.has(name) && mentions.has(name.replace(/\.+$/, ""))) name = name.replace(/\.+$/, "");
      if (mentions.has(name)) {
        const mark = make("span", "mention", "@" + name);
        mark.dataset.user = name;
        parent.append(mark);
        end = match.index + 1 + name.length;
      } else {
        parent.append(mention);
      }
    }
    at = end;
  }
  if (at < text.length) parent.append(text.slice(at));
}

// Fill `element` with the body's formatted nodes; `mentions` are usernames.
export function renderBody(element, body, mentions) {
  const names = new Set(mentions || []);
  element.replaceChildren();
  let at = 0;
  for (const match of body.matchAll(FENCE)) {
    if (match.index > at) inline(element, body.slice(at, match.index), names);
    const pre = make("pre", "code-block");
    pre.append(make("code", "", match[1].replace(/\n$/, "")));
    element.append(pre);
    at = match.index + match[0].length;
  }
  if (at < body.length) inline(element, body.slice(at), names);
}

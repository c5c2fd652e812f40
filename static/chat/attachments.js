// A message's files as DOM nodes (docs/protocol.md, Files and images): an image
// the server decoded is its thumbnail, which opens the full image; any other
// file is a card with its name and size, which downloads it. Names only ever
// reach the page as text; nothing here parses HTML.

import { make } from "./dom.js";

// An image is shown at most this large in the list (CSS pixels).
const SHOWN_WIDTH = 320;
const SHOWN_HEIGHT = 240;

// 512 bytes, 3.4 KB, 10 MB: as people read sizes (powers of 1024, as the server counts).
export function sizeWords(size) {
  const bytes = Number(size) || 0;
  if (bytes < 1024) return bytes + (bytes === 1 ? " byte" : " bytes");
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (value < 10 ? value.toFixed(1).replace(/\.0$/, "") : String(Math.round(value))) + " " + units[unit];
}

// Only the site's own paths are ever followed from a message object.
function sitePath(url) {
  return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : null;
}

// The box an image takes, known before its thumbnail loads, so the list does not jump.
function shownSize(width, height) {
  if (!width || !height) return [SHOWN_WIDTH, SHOWN_HEIGHT];
  const scale = Math.min(1, SHOWN_WIDTH / width, SHOWN_HEIGHT / height);
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function imageNode(attachment, thumbnail, full) {
  const link = make("a", "attachment attachment-image");
  link.href = full;
  link.target = "_blank";
  link.rel = "noopener";
  link.title = attachment.name + " (" + sizeWords(attachment.size) + ")";
  const image = document.createElement("img");
  const [width, height] = shownSize(attachment.width, attachment.height);
  image.width = width;
  image.height = height;
  image.alt = attachment.name;
  image.loading = "lazy";
  image.decoding = "async";
  image.src = thumbnail;
  link.append(image);
  return link;
}

function fileCard(attachment, url) {
  const card = make(url ? "a" : "span", "attachment attachment-file");
  if (url) {
    card.href = url;
    card.download = attachment.name;
  }
  const icon = make("span", "attachment-icon", "📄");
  icon.setAttribute("aria-hidden", "true");
  const text = make("span", "attachment-text");
  text.append(make("span", "attachment-name", attachment.name), make("span", "attachment-size", sizeWords(attachment.size)));
  card.append(icon, text);
  card.title = "Download " + attachment.name;
  return card;
}

// One node for one attachment object.
export function attachmentNode(attachment) {
  const url = sitePath(attachment.url);
  const thumbnail = sitePath(attachment.thumbnail_url);
  if (attachment.image === true && url && thumbnail) return imageNode(attachment, thumbnail, url);
  return fileCard(attachment, url);
}

// Fill `container` with a message's attachments; hidden when there are none.
export function renderAttachments(container, attachments) {
  container.replaceChildren();
  for (const attachment of attachments || []) {
    if (attachment && typeof attachment === "object") container.append(attachmentNode(attachment));
  }
  container.hidden = !container.childElementCount;
}

// Files on their way into a message: the 📎 button, files dropped on the room
// and images pasted into the box each start an upload (POST /api/uploads/,
// docs/protocol.md, Files and images) with its progress; the tray above the
// box shows them, each with a button that takes it out. The message names
// the ids of those uploaded once it is sent.

import { make } from "./dom.js";
import { attachmentNode, sizeWords } from "./attachments.js";

const UPLOAD_URL = "/api/uploads/";

function csrfToken() {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");
}

export class Uploads {
  // dropTarget: where files may be dropped; tray: the list above the box;
  // button, input: the 📎 button and its file input; box: the textarea (paste);
  // maxBytes, maxFiles: the server's limits; onChange(): the set changed;
  // onError(text): a file was refused, in words.
  constructor({ dropTarget, tray, button, input, box, maxBytes, maxFiles, onChange, onError }) {
    this.tray = tray;
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
    this.onChange = onChange;
    this.onError = onError;
    this.items = []; // {file, element, bar, status, xhr, attachment, failed}
    this.enabled = true;
    this.dragDepth = 0;

    button.addEventListener("click", () => {
      if (this.enabled) input.click();
    });
    input.addEventListener("change", () => {
      this.add(Array.from(input.files || []));
      input.value = ""; // the same file may be chosen again
    });
    box.addEventListener("paste", (event) => {
      const files = event.clipboardData ? Array.from(event.clipboardData.files || []) : [];
      if (!files.length || !this.enabled) return;
      // A copied image often comes with its HTML or URL as text: the file is what was meant.
      event.preventDefault();
      this.add(files);
    });
    dropTarget.addEventListener("dragenter", (event) => {
      if (!hasFiles(event) || !this.enabled) return;
      event.preventDefault();
      this.dragDepth += 1;
      dropTarget.classList.add("dropping");
    });
    dropTarget.addEventListener("dragover", (event) => {
      if (!hasFiles(event) || !this.enabled) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    dropTarget.addEventListener("dragleave", () => {
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (!this.dragDepth) dropTarget.classList.remove("dropping");
    });
    dropTarget.addEventListener("drop", (event) => {
      this.dragDepth = 0;
      dropTarget.classList.remove("dropping");
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (this.enabled) this.add(Array.from(event.dataTransfer.files || []));
    });
  }

  setEnabled(enabled) {
    this.enabled = enabled;
  }

  // --- what the composer asks ------------------------------------------------------------

  // Attachment objects of the files uploaded, in the order they were added.
  attachments() {
    return this.items.filter((item) => item.attachment).map((item) => item.attachment);
  }

  busy() {
    return this.items.some((item) => !item.attachment && !item.failed);
  }

  count() {
    return this.attachments().length;
  }

  // Sent: the tray empties (the message carries them now).
  clear() {
    for (const item of this.items) if (item.xhr) item.xhr.abort();
    this.items = [];
    this.tray.replaceChildren();
    this.tray.hidden = true;
    this.onChange();
  }

  // --- adding, uploading, removing -------------------------------------------------------

  add(files) {
    for (const file of files) {
      if (this.items.length >= this.maxFiles) {
        this.onError("A message takes at most " + this.maxFiles + " files.");
        break;
      }
      if (file.size > this.maxBytes) {
        this.onError(file.name + " is too large: files up to " + sizeWords(this.maxBytes) + ".");
        continue;
      }
      this.start(file);
    }
    this.onChange();
  }

  start(file) {
    const item = { file: file, xhr: null, attachment: null, failed: false };
    const element = make("li", "upload");
    const name = make("span", "upload-name", file.name || "file");
    const status = make("span", "upload-status", "Uploading…");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + (file.name || "file"));
    const remove = make("button", "upload-remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + (file.name || "file"));
    remove.addEventListener("click", () => this.remove(item));
    element.append(name, bar, status, remove);
    Object.assign(item, { element: element, bar: bar, status: status });
    this.items.push(item);
    this.tray.append(element);
    this.tray.hidden = false;
    this.upload(item);
  }

  upload(item) {
    const form = new FormData();
    form.append("file", item.file, item.file.name || "file");
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", UPLOAD_URL);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.bar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.addEventListener("load", () => {
      item.xhr = null;
      const body = xhr.response && typeof xhr.response === "object" ? xhr.response : {};
      if (xhr.status === 201 && body.id) this.uploaded(item, body);
      else this.refused(item, xhr.status, body);
    });
    xhr.addEventListener("error", () => {
      item.xhr = null;
      this.refused(item, 0, {});
    });
    xhr.send(form);
  }

  uploaded(item, attachment) {
    item.attachment = attachment;
    item.element.classList.add("done");
    item.bar.remove();
    // What the message will show: the server's thumbnail, or the file's card
    // (which says its name and size itself).
    const preview = attachmentNode(attachment);
    preview.classList.add("upload-preview");
    preview.removeAttribute("href"); // in the tray it is a preview, not a link
    const image = preview.querySelector("img");
    if (image) image.loading = "eager";
    item.status.textContent = image ? sizeWords(attachment.size) : "";
    item.element.prepend(preview);
    this.onChange();
  }

  refused(item, status, body) {
    item.failed = true;
    item.element.classList.add("failed");
    item.bar.remove();
    let text;
    // over_quota (413 too) says in its detail what is used of the quota.
    if (status === 413 && body.error !== "over_quota") text = "Too large: files up to " + sizeWords(Number(body.limit) || this.maxBytes) + ".";
    else if (status === 429) text = "Too many uploads: wait " + Math.ceil(Number(body.retry_after) || 1) + " s and attach it again.";
    else if (status === 0) text = "Not uploaded: the connection failed.";
    else text = "Not uploaded" + (body.detail ? ": " + body.detail : ".");
    item.status.textContent = text;
    this.onError((item.file.name || "file") + ": " + text);
    this.onChange();
  }

  remove(item) {
    if (item.xhr) item.xhr.abort();
    this.items = this.items.filter((other) => other !== item);
    item.element.remove();
    this.tray.hidden = !this.items.length;
    this.onChange();
  }
}

// A room's settings, for its owners (and staff), and "Leave room" for every member
// (docs/protocol.md, Rooms people make). Everything goes through the JSON API;
// the page's own socket (attention.js) says live when the reader's role changes,
// and the buttons follow it. Names reach the page as text only.

import { onRooms } from "./attention.js";
import { make } from "./dom.js";

function csrfToken() {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

// One call of the API: its JSON answer, or an Error carrying the server's `detail`.
async function api(method, path, body) {
  const options = {
    method: method,
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken() },
  };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("No connection: try again.");
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
  }
  if (!response.ok) throw new Error((data && data.detail) || "Refused (" + response.status + ")");
  return data;
}

function describeInvite(invite) {
  const parts = [];
  if (invite.expires) {
    const date = new Date(invite.expires);
    parts.push("until " + date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
  } else {
    parts.push("no end");
  }
  parts.push(invite.max_uses ? invite.uses + " of " + invite.max_uses + " uses" : invite.uses + " uses");
  if (!invite.usable) parts.push("no longer works");
  return parts.join(" · ");
}

export class RoomSettings {
  constructor({ slug, me, staff, kind }) {
    this.slug = slug;
    this.me = me;
    this.staff = staff;
    this.kind = kind;
    this.base = "/api/rooms/" + encodeURIComponent(slug) + "/";
    const byId = (id) => document.getElementById(id);
    this.dialog = byId("settings-dialog");
    this.openButton = byId("settings-open");
    this.leaveButton = byId("leave-room");
    this.leaveError = byId("leave-error");
    this.status = byId("settings-status");
    this.memberList = byId("member-list");
    this.inviteList = byId("invite-list");
    this.archiveButton = byId("room-archive");
    this.nameInput = byId("room-name-input");
    this.descriptionInput = byId("room-description-input");
    if (!this.dialog || !this.openButton) return;
    this.wire(byId);
    onRooms((rooms) => {
      const entry = rooms.find((room) => room.slug === this.slug);
      this.role(entry ? entry.role : null);
    });
  }

  // The reader's role changed (or was first told): show what they may do.
  role(role) {
    this.openButton.hidden = !(role === "owner" || this.staff);
    if (this.leaveButton) this.leaveButton.hidden = !role;
    if (this.openButton.hidden && this.dialog.open) this.dialog.close();
  }

  say(text) {
    this.status.textContent = text;
  }

  async run(work, done) {
    this.say("");
    try {
      await work();
      if (done) this.say(done);
    } catch (error) {
      this.say(error.message);
    }
  }

  wire(byId) {
    this.openButton.addEventListener("click", () => {
      this.dialog.showModal();
      this.refresh();
    });
    byId("settings-close").addEventListener("click", () => this.dialog.close());
    byId("room-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { name: this.nameInput.value, description: this.descriptionInput.value };
      this.run(() => api("PATCH", this.base, body), "Saved.");
    });
    this.archiveButton.addEventListener("click", () => {
      const archived = this.archiveButton.dataset.archived !== "true";
      this.run(async () => {
        const room = await api("PATCH", this.base, { archived: archived });
        this.showArchived(room.archived);
      }, archived ? "Archived." : "Unarchived.");
    });
    byId("member-add-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("member-add-name");
      const username = input.value.trim().replace(/^@/, "");
      if (!username) return;
      this.run(async () => {
        await api("POST", this.base + "members/", { username: username });
        input.value = "";
        await this.refresh();
      }, username + " added.");
    });
    byId("invite-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = {};
      const expires = byId("invite-expires").value;
      const uses = byId("invite-uses").value;
      if (expires) body.expires_in = Number(expires);
      if (uses) body.max_uses = Number(uses);
      this.run(async () => {
        await api("POST", this.base + "invites/", body);
        await this.refresh();
      }, "Link made: copy it and send it.");
    });
    if (this.leaveButton) this.leaveButton.addEventListener("click", () => this.leave());
  }

  showArchived(archived) {
    this.archiveButton.dataset.archived = archived ? "true" : "false";
    this.archiveButton.textContent = archived ? "Unarchive room" : "Archive room";
  }

  async refresh() {
    let room;
    try {
      room = await api("GET", this.base);
    } catch (error) {
      this.say(error.message);
      return;
    }
    this.showArchived(room.archived);
    if (document.activeElement !== this.nameInput) this.nameInput.value = room.name;
    if (document.activeElement !== this.descriptionInput) this.descriptionInput.value = room.description || "";
    this.showMembers(room.members || []);
    this.showInvites(room.invites || []);
  }

  showMembers(members) {
    const items = members.map((member) => {
      const item = make("li", "member");
      item.dataset.username = member.username;
      item.dataset.role = member.role;
      item.append(make("span", "member-name", member.username));
      if (member.role === "owner") item.append(" ", make("span", "badge badge-owner", "owner"));
      const buttons = make("span", "member-buttons");
      const next = member.role === "owner" ? "member" : "owner";
      const roleButton = make("button", "link-button member-role", next === "owner" ? "Make owner" : "Make member");
      roleButton.type = "button";
      roleButton.addEventListener("click", () => {
        const path = this.base + "members/" + encodeURIComponent(member.username) + "/";
        this.run(async () => {
          await api("PATCH", path, { role: next });
          await this.refresh();
        }, member.username + " is now " + (next === "owner" ? "an owner." : "a member."));
      });
      buttons.append(roleButton);
      if (member.username !== this.me) {
        const remove = make("button", "link-button member-remove", "Remove");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove " + member.username);
        remove.addEventListener("click", () => {
          const path = this.base + "members/" + encodeURIComponent(member.username) + "/";
          this.run(async () => {
            await api("DELETE", path);
            await this.refresh();
          }, member.username + " removed.");
        });
        buttons.append(remove);
      }
      item.append(buttons);
      return item;
    });
    this.memberList.replaceChildren(...items);
  }

  showInvites(invites) {
    const items = invites.map((invite) => {
      const item = make("li", "invite");
      item.dataset.code = invite.code;
      const link = make("input", "invite-url");
      link.readOnly = true;
      link.value = invite.url;
      link.setAttribute("aria-label", "Invite link");
      const copy = make("button", "link-button invite-copy", "Copy");
      copy.type = "button";
      copy.addEventListener("click", () => {
        link.select();
        const copied = navigator.clipboard ? navigator.clipboard.writeText(invite.url) : Promise.reject();
        copied.then(() => this.say("Copied."), () => {
          document.execCommand("copy");
          this.say("Copied.");
        });
      });
      const revoke = make("button", "link-button invite-revoke", "Revoke");
      revoke.type = "button";
      revoke.addEventListener("click", () => {
        const path = this.base + "invites/" + encodeURIComponent(invite.code) + "/";
        this.run(async () => {
          await api("DELETE", path);
          await this.refresh();
        }, "Revoked: that link works no more.");
      });
      item.append(link, copy, revoke, make("span", "invite-meta", describeInvite(invite)));
      return item;
    });
    if (!items.length) items.push(make("li", "invite-empty", "No links yet."));
    this.inviteList.replaceChildren(...items);
  }

  async leave() {
    if (!window.confirm("Leave this room?")) return;
    this.leaveError.textContent = "";
    try {
      await api("DELETE", this.base + "members/" + encodeURIComponent(this.me) + "/");
    } catch (error) {
      this.leaveError.textContent = error.message;
      return;
    }
    location.assign("/");
  }
}

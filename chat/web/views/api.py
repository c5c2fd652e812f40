"""The JSON API (docs/protocol.md). Every room goes through chat.domain.access.room_for_user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from chat.actions.membership import (
    UNSET,
    invite_accept,
    invite_create,
    invite_problem,
    invite_revoke,
    member_add,
    member_remove,
    member_role_set,
    room_create,
    room_join,
    room_update,
)
from chat.actions.messages import Sent, message_send
from chat.actions.rooms import notify_set, room_state_set
from chat.domain import payloads, presence
from chat.domain.access import manage_check, may_publish, room_for_user
from chat.domain.attention import room_entry, room_members
from chat.domain.bots import bot_key_room
from chat.domain.inputs import MAX_NUMBER
from chat.domain.limits import (
    rate_place_blocking,
)
from chat.errors import ChatError
from chat.files.attachments import attachment_create, upload_limit_error
from chat.models import Invite, Membership, Message, Room
from chat.web.views.common import (
    JSON_STRICT,
    PAGE_SIZE,
    api_view,
    json_body,
    json_object,
    query_number,
    rooms_payload,
)


@require_http_methods(["GET", "POST"])
@api_view
def api_rooms(request: HttpRequest, user: User) -> JsonResponse:
    """GET: the rooms the user can see. POST `{"name", "kind", "description", "slug"}`:
    create a room the caller owns, 201 with its room object (docs/protocol.md)."""
    if request.method == "POST":
        body = json_object(request)
        room = room_create(
            user=user,
            name=body.get("name"),
            kind=body.get("kind", Room.Kind.PUBLIC),
            description=body.get("description", ""),
            slug=body.get("slug"),
        )
        return JsonResponse(room_object(user, room), status=201)
    return JsonResponse({"rooms": rooms_payload(user)})


def room_object(user: User, room: Room) -> dict[str, Any]:
    """A room as the API shows it to `user`: its entry (with their role) and who is online."""
    entry = room_entry(user, room.pk)
    if entry is None:  # staff managing a private room they are not in
        room.refresh_from_db()
        return {
            "slug": room.slug,
            "name": room.name,
            "description": room.description,
            "kind": room.kind,
            "archived": room.archived,
            "role": None,
        }
    online = presence.online_counts([room.pk]).get(room.pk, 0)
    return payloads.room_entry_payload(entry, online=online)


def managed_room(user: User, slug: str) -> Room:
    """The room of an owner's call: through the gate, except for staff, who run every room."""
    if user.is_staff and user.is_active:
        room = Room.objects.filter(slug=slug).first()
        if room is None:
            raise ChatError("not_found", "no such room")
        return room
    return room_for_user(user=user, slug=slug)


def invite_payload(request: HttpRequest, invite: Invite) -> dict[str, Any]:
    """An invite as its room's owners see it."""
    expires = invite.expires.isoformat().replace("+00:00", "Z") if invite.expires else None
    problem = invite_problem(invite)
    return {
        "code": invite.code,
        "url": request.build_absolute_uri(reverse("chat:invite", args=[invite.code])),
        "expires": expires,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "usable": problem is None,
    }


def members_payload(room: Room) -> list[dict[str, str]]:
    """The room's members and their roles, owners first, by name."""
    rows = (
        Membership.objects.filter(room=room)
        .select_related("user")
        .order_by("role", "user__username")[:MEMBERS_LISTED]
    )
    return [{"username": row.user.get_username(), "role": row.role} for row in rows]


# The members GET /api/rooms/<slug>/ lists at most.
MEMBERS_LISTED = 1000


def member_payload(membership: Membership) -> dict[str, str]:
    return {"username": membership.user.get_username(), "role": membership.role}


@require_http_methods(["GET", "PATCH"])
@api_view
def api_room(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """GET: the room object, its members and, for its owners, its invites.
    PATCH `{"name", "description", "archived"}` (any of them): owners and staff."""
    room = managed_room(user, slug)
    if request.method == "PATCH":
        body = json_object(request)
        unknown = set(body) - {"name", "description", "archived"}
        if unknown:
            raise ChatError("bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
        room = room_update(
            user=user,
            room=room,
            name=body.get("name", UNSET),
            description=body.get("description", UNSET),
            archived=body.get("archived", UNSET),
        )
        return JsonResponse(room_object(user, room))
    answer = room_object(user, room)
    answer["members"] = members_payload(room)
    role = answer.get("role")
    try:
        manage_check(user=user, room=room, role=role or "")
    except ChatError:
        pass
    else:
        invites = Invite.objects.filter(room=room, revoked__isnull=True)[:100]
        answer["invites"] = [invite_payload(request, invite) for invite in invites]
    return JsonResponse(answer)


@require_http_methods(["GET", "POST"])
@api_view
def api_members(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """GET: who `@q` may complete to in the room (docs/protocol.md, Mentions).
    POST `{"username"}`: add a member (owners and staff), 201."""
    if request.method == "POST":
        room = managed_room(user, slug)
        membership = member_add(user=user, room=room, username=json_object(request).get("username"))
        return JsonResponse(member_payload(membership), status=201)
    names = room_members(user=user, slug=slug, prefix=request.GET.get("q", ""))
    return JsonResponse({"members": names})


@require_http_methods(["PATCH", "DELETE"])
@api_view
def api_member(request: HttpRequest, user: User, slug: str, username: str) -> HttpResponse:
    """PATCH `{"role"}`: make a member an owner or an owner a member (owners and staff).
    DELETE: take someone out (owners and staff), or leave (anyone, themselves): 204."""
    room = managed_room(user, slug)
    if request.method == "PATCH":
        role = json_object(request).get("role")
        membership = member_role_set(user=user, room=room, username=username, role=role)
        return JsonResponse(member_payload(membership))
    member_remove(user=user, room=room, username=username)
    return HttpResponse(status=204)


@require_POST
@api_view
def api_join(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """POST /api/rooms/<slug>/join/: join a public room; its room object, with the role."""
    room = room_for_user(user=user, slug=slug)
    room_join(user=user, room=room)
    return JsonResponse(room_object(user, room))


@require_POST
@api_view
def api_invites(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """POST `{"expires_in", "max_uses"}`, both optional: a new invite link (owners, staff), 201."""
    room = managed_room(user, slug)
    body = json_object(request)
    invite = invite_create(
        user=user, room=room, expires_in=body.get("expires_in"), max_uses=body.get("max_uses")
    )
    payload = invite_payload(request, invite)
    return JsonResponse(
        {name: payload[name] for name in ("code", "url", "expires", "max_uses")}, status=201
    )


@require_http_methods(["DELETE"])
@api_view
def api_invite(request: HttpRequest, user: User, slug: str, code: str) -> HttpResponse:
    """DELETE /api/rooms/<slug>/invites/<code>/: revoke an invite (owners, staff): 204."""
    room = managed_room(user, slug)
    invite_revoke(user=user, room=room, code=code)
    return HttpResponse(status=204)


@require_POST
@api_view
def api_invite_accept(request: HttpRequest, user: User, code: str) -> JsonResponse:
    """POST /api/invites/<code>/accept/: join the invite's room; its room object."""
    room = invite_accept(user=user, code=code)
    return JsonResponse(room_object(user, room))


@require_http_methods(["PUT"])
@api_view
def api_notify(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """Set what the reader is told of a room: `{"notify": "all" | "mentions" | "none"}`."""
    room = room_for_user(user=user, slug=slug)
    notify = notify_set(user=user, room=room, notify=json_object(request).get("notify"))
    return JsonResponse({"slug": room.slug, "notify": notify})


def publisher_room(request: HttpRequest, user: User, slug: str) -> Room:
    """The room a caller publishes into or reads: a key's own room, or one the user may read."""
    key = request.bot_key  # type: ignore[attr-defined]
    return bot_key_room(key, slug) if key is not None else room_for_user(user=user, slug=slug)


def api_publish(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """POST /api/rooms/<slug>/messages/: store and broadcast, idempotent by client_id.

    201 with the stored message object, the one the socket sends its author;
    200 with it for a client_id already used, storing nothing. A bot key is
    limited per key (CHAT_PUBLISH_RATE_LIMIT), a user as on their sockets.
    """
    key = request.bot_key  # type: ignore[attr-defined]
    room = publisher_room(request, user, slug)
    fields = json_object(request)
    if key is not None:
        # A bot's key is limited per key in Redis; a person by their stored messages.
        with rate_place_blocking(what="messages", bot_key_id=key.pk) as place:
            sent = publish_send(room, user, fields, publisher=True)
            place.kept = sent.created
    else:
        sent = publish_send(room, user, fields, publisher=False)
    assert sent.message is not None
    payload = payloads.message_payload(sent.message, for_author=True)
    return JsonResponse(payload, status=201 if sent.created else 200, json_dumps_params=JSON_STRICT)


def publish_send(room: Room, user: User, fields: dict[str, Any], *, publisher: bool) -> Sent:
    return message_send(
        room_id=room.pk,
        author=user,
        body=fields.get("body"),
        client_id=fields.get("client_id"),
        reply_to=fields.get("reply_to"),
        publisher=publisher,
        attachments=fields.get("attachments"),
    )


@require_http_methods(["PUT"])
@api_view(keys=True)
def api_state(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    """PUT /api/rooms/<slug>/state/: set a broadcast room's state (a key for it, or staff)."""
    room = publisher_room(request, user, slug)
    if request.bot_key is None and not may_publish(user=user, room=room):  # type: ignore[attr-defined]
        raise ChatError("forbidden", "only publishers set a room's state")
    version = room_state_set(room=room, state=json_body(request))
    room.refresh_from_db(fields=["state"])
    return JsonResponse({"slug": room.slug, "state": room.state, "version": version})


@require_http_methods(["GET", "POST"])
@api_view(keys=True)
def api_messages(request: HttpRequest, user: User, slug: str) -> JsonResponse:
    if request.method == "POST":
        return api_publish(request, user, slug)
    room = publisher_room(request, user, slug)
    # Cursors past the newest id are harmless; past the database's range, clamped.
    before = query_number(request, "before", low=0, high=10**30)
    after = query_number(request, "after", low=0, high=10**30)
    around = query_number(request, "around", low=1, high=10**30)
    limit = query_number(request, "limit", low=1, high=100) or PAGE_SIZE
    if around is not None and (before is not None or after is not None):
        raise ChatError("bad_request", "around goes alone, without before or after")

    def clamped(number: int | None) -> int | None:
        return None if number is None else min(number, MAX_NUMBER)

    page = Message.objects.history(
        room_id=room.pk,
        limit=limit,
        before=clamped(before),
        after=clamped(after),
        around=clamped(around),
    )
    return JsonResponse(
        payloads.history_payload(page, user_id=user.pk), json_dumps_params=JSON_STRICT
    )


def upload_too_large(request: HttpRequest) -> bool:
    """Whether the request says it is larger than any upload may be (checked unread)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.CHAT_UPLOAD_MAX_BYTES + settings.CHAT_UPLOAD_OVERHEAD_BYTES


@require_POST
@api_view(keys=True)
def api_uploads(request: HttpRequest, user: User) -> JsonResponse:
    """POST /api/uploads/: one file (multipart field `file`) -> 201 with its attachment object.

    Over CHAT_UPLOAD_MAX_BYTES: 413 `too_large` with the `limit`, told by the
    Content-Length before the body is parsed, or by the file's size once it is
    (chat.files.upload_limit refuses it before Django copies it, under ASGI). Over the
    user's CHAT_UPLOAD_QUOTA_BYTES: 413 `over_quota` with the `quota` and what is
    `used`. At most CHAT_UPLOAD_RATE_LIMIT uploads per user; a worker busy with
    other images for CHAT_IMAGE_DECODE_WAIT: 503 `unavailable` with retry_after.
    """
    if upload_too_large(request):
        raise upload_limit_error()
    upload = request.FILES.get("file")
    if upload is None:
        raise ChatError("bad_request", "send one file in the multipart field `file`")
    if upload.size is None or upload.size > settings.CHAT_UPLOAD_MAX_BYTES:
        raise upload_limit_error()
    with rate_place_blocking(user_id=user.pk, what="uploads") as place:
        attachment = attachment_create(uploader=user, file=upload, name=upload.name)
        place.kept = True
    return JsonResponse(
        payloads.attachment_payload(attachment), status=201, json_dumps_params=JSON_STRICT
    )

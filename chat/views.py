"""Pages and the JSON API. Every room goes through chat.access.room_for_user."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import events, presence, protocol, wire
from chat.access import manage_check, may_publish, role_of, room_for_user
from chat.accounts import SignupForm
from chat.actions.membership import (
    DESCRIPTION_MAX,
    NAME_MAX,
    UNSET,
    invite_accept,
    invite_create,
    invite_find,
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
from chat.attachments import attachment_create, attachment_for_reader, upload_limit_error
from chat.attention import notify_of, room_entries, room_entry, room_members, room_titles
from chat.bots import bot_key_check, bot_key_room, looks_like_key
from chat.errorpages import NO_SUCH_ROOM, Missing
from chat.errors import ChatError
from chat.limits import (
    login_keys,
    rate_place_blocking,
    signup_keys,
    throttle_count,
    throttle_wait,
    wait_detail,
)
from chat.models import BotKey, Invite, Membership, Message, Notify, ReadState, Role, Room
from chat.people import PEOPLE_LIMIT_MAX, people_find, people_query, person_payload
from chat.redis.pools import shard_names, shards_ping
from chat.search import (
    SEARCH_CANDIDATES,
    SEARCH_PAGE_SIZE,
    Hit,
    SearchPage,
    messages_search,
    next_page_query,
    permalink,
    search_parse,
)
from chat.services import MAX_NUMBER, direct_room_find, direct_room_open, mute_state
from chat.serving import file_response
from chat.tokens import token_check, token_issue

PAGE_SIZE = 50
JSON_STRICT = {"ensure_ascii": False, "allow_nan": False}


def too_many(request: HttpRequest, template: str, context: dict[str, Any], wait: float) -> Any:
    """A form page refused for flooding: 429, with the wait in words."""
    response = render(request, template, {**context, "throttled": wait_detail(wait)}, status=429)
    response["Retry-After"] = str(int(wait))
    return response


class LoginView(auth_views.LoginView):
    """Django's log-in, refusing guesses beyond CHAT_LOGIN_LIMIT before any password check."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _, seconds = settings.CHAT_LOGIN_LIMIT
        keys = login_keys(request, str(request.POST.get("username", "")))
        wait = throttle_wait(keys, seconds=seconds)
        if wait:
            context = self.get_context_data(form=self.form_class(request))
            return too_many(request, "registration/login.html", context, wait)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            throttle_count(keys, seconds=seconds)
        return response


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and log it in; at most CHAT_SIGNUP_LIMIT tries per address."""
    if request.user.is_authenticated:
        return redirect("chat:lobby")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        count_keys, seconds = signup_keys(request), settings.CHAT_SIGNUP_LIMIT[1]
        wait = throttle_wait(count_keys, seconds=seconds)
        if wait:
            form = SignupForm()
            return too_many(request, "registration/signup.html", {"form": form}, wait)
        throttle_count(count_keys, seconds=seconds)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="chat.accounts.PeopleBackend")
        return redirect("chat:lobby")
    return render(request, "registration/signup.html", {"form": form})


def rooms_payload(user: User) -> list[dict[str, Any]]:
    """The rooms `user` can see, as /api/rooms/ and the lobby show them."""
    entries = room_entries(user)
    online = presence.online_counts([entry.room.pk for entry in entries])
    return [
        events.room_entry_payload(entry, online=online.get(entry.room.pk, 0)) for entry in entries
    ]


def lobby_sides(rooms: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ "Your rooms" (those one is in, direct conversations, broadcast rooms) and
    "Browse rooms" (public rooms one is not in), as lobby.js splits them too."""
    mine = [
        room
        for room in rooms
        if room["role"] is not None or room["kind"] in (Room.Kind.DIRECT, Room.Kind.BROADCAST)
    ]
    browse = [room for room in rooms if room not in mine]
    return mine, browse


@login_required
def lobby(request: HttpRequest) -> HttpResponse:
    """The rooms the user is in, the public rooms they may join, with online, unread and
    mention counts; and the form of a new room (POST creates it, then opens it)."""
    assert isinstance(request.user, User)
    user = request.user
    form: dict[str, Any] = {"name": "", "kind": "public", "description": "", "error": ""}
    status = 200
    if request.method == "POST":
        form.update(
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", "public"),
            description=request.POST.get("description", ""),
        )
        try:
            room = room_create(
                user=user, name=form["name"], kind=form["kind"], description=form["description"]
            )
        except ChatError as error:
            form["error"] = error.detail
            status = ERROR_STATUS.get(error.code, 400)
        else:
            return redirect("chat:room", slug=room.slug)
    mine, browse = lobby_sides(rooms_payload(user))
    return render(
        request,
        "chat/lobby.html",
        {
            "rooms": mine,
            "browse": browse,
            "form": form,
            "may_create": settings.CHAT_ROOM_CREATORS == "all" or user.is_staff,
            "name_max": NAME_MAX,
            "description_max": DESCRIPTION_MAX,
        },
        status=status,
    )


@login_required
@require_POST
def join(request: HttpRequest, slug: str) -> HttpResponse:
    """The lobby's Join button (without JavaScript too): join a public room and open it."""
    assert isinstance(request.user, User)
    room = viewable_room(request, slug)
    if isinstance(room, HttpResponse):
        return room
    try:
        room_join(user=request.user, room=room)
    except ChatError as error:
        if error.code != "conflict":  # in it already: just open it
            return refused(request, "Not now", error)
    return redirect("chat:room", slug=room.slug)


def refused(request: HttpRequest, heading: str, error: ChatError) -> HttpResponse:
    """A page's refusal in the site's layout, with the code's status."""
    return render(
        request,
        "chat/refused.html",
        {"heading": heading, "reason": error.detail},
        status=ERROR_STATUS.get(error.code, 400),
    )


@login_required
@require_http_methods(["GET", "POST"])
def invite_page(request: HttpRequest, code: str) -> HttpResponse:
    """/invite/<code>/: the room an invite leads to and a Join button (POST joins).

    A code that is unknown, revoked, expired or used up says to ask an owner for a
    new link, and names no room. Someone in the room already goes straight in.
    """
    assert isinstance(request.user, User)
    user = request.user
    try:
        invite = invite_find(code)
        problem = invite_problem(invite)
        if problem is not None:
            raise ChatError("invite_invalid", f"{problem}: ask an owner for a new link")
        room = invite.room
        if role_of(user=user, room=room) is not None:
            return redirect("chat:room", slug=room.slug)
        if request.method == "POST":
            invite_accept(user=user, code=code)
            return redirect("chat:room", slug=room.slug)
    except ChatError as error:
        if error.code == "not_found":
            error = ChatError(
                "not_found", "this invite link does not work: ask an owner for a new link"
            )
        return refused(request, "This invite does not work", error)
    members = Membership.objects.filter(room=room).count()
    return render(
        request,
        "chat/invite.html",
        {"room": room, "invite": invite, "member_count": members},
    )


def viewable_room(request: HttpRequest, slug: str) -> Room | HttpResponse:
    """The room of a page, or where to go instead: log in, or 404 for no such room
    (which a private room the reader is not in reads as, word for word)."""
    try:
        return room_for_user(user=request.user, slug=slug)
    except ChatError:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Missing(NO_SUCH_ROOM, heading="No such room") from None


def room_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A room: its newest messages and the reader's read mark; the socket brings the rest.

    A broadcast room open to viewers is shown to people who are not signed in too.
    """
    room = viewable_room(request, slug)
    if isinstance(room, HttpResponse):
        return room
    if request.method == "POST":
        # Only a browser without JavaScript submits the composer (the page sends
        # over the socket): back to the page, whose notice says the chat needs it.
        # The form posts so that a message never ends up in a URL or a log.
        return redirect("chat:room", slug=room.slug)
    # A permalink (?around=<id>) opens the room at that message, away from the
    # newest: the page reads on from there, and live messages wait below.
    try:
        around = query_number(request, "around", low=1, high=10**30)
    except ChatError:
        # docs/protocol.md (Permalinks): 404, on a page that says what a link looks like.
        raise Missing(
            "This link names no message: a message's link ends in ?around= and the"
            " message's number.",
            heading="No such message",
            back=(
                reverse("chat:room", kwargs={"slug": room.slug}),
                f"Open {room_titles([room], request.user)[room.pk]}",
            ),
        ) from None
    page = Message.objects.history(
        room_id=room.pk, limit=PAGE_SIZE, around=None if around is None else min(around, MAX_NUMBER)
    )
    messages, has_more, has_newer = page.messages, page.has_more, bool(page.has_newer)
    # The socket resumes after this id: the newest shown or, away from the newest,
    # the room's newest, so that live messages start from now.
    last_id = messages[-1].number if messages else 0
    if has_newer:
        last_id = room.last_message_number
    user = request.user
    signed_in = isinstance(user, User)
    # A direct conversation has no owners, and nobody leaves it: no query for it.
    role = role_of(user=user, room=room) if room.kind != Room.Kind.DIRECT else None
    may_manage = room.kind != Room.Kind.DIRECT and (
        role == Role.OWNER or (signed_in and user.is_staff)
    )
    # The page draws its unread divider after this mark.
    last_read = None
    if isinstance(user, User):
        last_read = (
            ReadState.objects.filter(user_id=user.pk, room_id=room.pk)
            .values_list("last_read_number", flat=True)
            .first()
        )
    return render(
        request,
        "chat/room.html",
        {
            "room": room,
            "title": room_titles([room], user)[room.pk],
            "notify": notify_of(user, room) if isinstance(user, User) else None,
            "notify_choices": Notify.choices,
            "messages": messages,
            # The page renders them as it renders live ones, from the same objects.
            "rows": [
                (m, events.dumps(events.message_payload(m, for_author=m.author_id == user.pk)))
                for m in messages
            ],
            "has_more": has_more,
            "has_newer": has_newer,
            "around": around,
            "staff": user.is_staff,
            "role": role,
            "may_manage": may_manage,
            "may_post": signed_in and may_publish(user=user, room=room),
            # The reader's mute here, so that the composer says so before they type.
            "mute": events.dumps(mute_state(user_id=user.pk, room_id=room.pk))
            if signed_in
            else "null",
            "state": events.dumps(room.state),
            "last_id": last_id,
            "last_read": last_read or 0,
            "body_max": settings.CHAT_BODY_MAX,
            "comment_max": settings.CHAT_COMMENT_MAX,
            "upload_max": settings.CHAT_UPLOAD_MAX_BYTES,
            "attachments_max": settings.CHAT_ATTACHMENTS_MAX,
            "name_max": NAME_MAX,
            "description_max": DESCRIPTION_MAX,
        },
    )


def broadcasts_page(request: HttpRequest) -> HttpResponse:
    """The broadcast rooms open to viewers: where a viewer who is not signed in goes back to."""
    rooms = (
        Room.objects.visible_to(AnonymousUser())
        .filter(archived=False)
        .only("slug", "name", "description", "live_comments")
        .order_by("name")
    )
    return render(request, "chat/broadcasts.html", {"rooms": rooms})


def live_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A room's live view: its state, and live comments flying across the stage."""
    room = viewable_room(request, slug)
    if isinstance(room, HttpResponse):
        return room
    return render(
        request,
        "chat/live.html",
        {
            "room": room,
            "title": room_titles([room], request.user)[room.pk],
            "state": events.dumps(room.state),
            "comment_max": settings.CHAT_COMMENT_MAX,
        },
    )


@login_required
def direct(request: HttpRequest, username: str) -> HttpResponse:
    """Open (creating on first use) the direct room with `username`.

    Making a conversation tells the other person's pages of it: at most
    CHAT_DIRECT_RATE_LIMIT new ones per person; opening one that exists is free.
    """
    assert isinstance(request.user, User)
    find_someone = (reverse("chat:people"), "Find someone to talk to")
    if username == request.user.get_username():
        # The contract's 404 (docs/protocol-v1.md), on a page that says why.
        raise Missing(
            "You cannot open a conversation with yourself. Find someone to talk to instead.",
            heading="That is you",
            back=find_someone,
        )
    try:
        room = direct_room_find(user=request.user, username=username)
        if room is None:
            with rate_place_blocking(user_id=request.user.pk, what="directs") as place:
                room = direct_room_open(user=request.user, username=username)
                place.kept = True
    except ChatError as error:
        if error.code == "not_found":
            raise Missing(
                person_missing(username), heading="No such person", back=find_someone
            ) from None
        status = ERROR_STATUS.get(error.code, 400)
        reason = error.detail
        if error.retry_after is not None:
            reason += f". Try again in {math.ceil(error.retry_after)} seconds."
        response = render(
            request,
            "chat/refused.html",
            {"heading": "Not now", "reason": reason},
            status=status,
        )
        if error.retry_after is not None:
            response["Retry-After"] = str(math.ceil(error.retry_after))
        return response
    return redirect("chat:room", slug=room.slug)


def person_missing(username: str) -> str:
    """Why /dm/<username>/ opens nothing, the same for no such account and an inactive one.

    The name is repeated only when it could be a username: a link's text is never
    put on the site's page as the site's own words.
    """
    if USERNAME_SHAPE.fullmatch(username):
        return f"There is nobody called “{username}” to talk to here."
    return "There is nobody by that name to talk to here."


# What Django's usernames may be: letters, digits and @.+-_, at most 150.
USERNAME_SHAPE = re.compile(r"[\w.@+-]{1,150}")


# --- JSON API -------------------------------------------------------------


def api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


# HTTP statuses of the protocol's error codes; anything else is 400.
ERROR_STATUS = {
    "not_found": 404,
    "forbidden": 403,
    "muted": 403,
    "room_archived": 403,
    "rate_limited": 429,
    "unavailable": 503,
    "too_large": 413,
    "over_quota": 413,
    "conflict": 409,
    "last_owner": 409,
    "invite_invalid": 410,
}


def bearer(request: HttpRequest) -> str | None:
    """The token of `Authorization: Bearer <token>` ("" for the scheme with no token,
    which is refused as a wrong one), or None without a Bearer header."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return None


def api_unauthenticated(detail: str) -> JsonResponse:
    """401, with the scheme to authenticate by (RFC 6750)."""
    response = api_error(401, "unauthenticated", detail)
    response["WWW-Authenticate"] = 'Bearer realm="chatsite"'
    return response


def api_view(view: Callable[..., HttpResponse] | None = None, *, keys: bool = False) -> Any:
    """The JSON API's door: who calls, and every refusal as JSON.

    The caller is a bot key or a user's token (`Authorization: Bearer`), else
    the session, which must carry the CSRF token on a write (a Bearer request
    carries no cookie, so CSRF does not apply to it). `request.bot_key` is
    the key, or None. A key acts only where `keys` is set (publishing into
    its rooms, reading their history, uploading, a room's state): anywhere
    else it is 403. 401 instead of a login redirect; a ChatError is answered
    with its code and ERROR_STATUS, a wait as 429 with Retry-After.
    """
    if view is None:
        return lambda view: api_view(view, keys=keys)

    @csrf_exempt  # checked below, for the session
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = bearer(request)
        key: BotKey | None = None
        user: Any
        if token is not None and looks_like_key(token):
            key = bot_key_check(token)
            if key is None:
                return api_unauthenticated("wrong or revoked key")
            if not keys:
                return api_error(
                    403, "forbidden", "a bot key publishes into its rooms and reads them, no more"
                )
            user = key.user
        elif token is not None:
            check = token_check(token)
            user = check.user if check.user is not None else AnonymousUser()
        else:
            user = request.user
            # CSRF guards a signed-in session's writes; with no session there is
            # nothing to guard, and the answer is that the caller is not known.
            if user.is_authenticated and request.method not in ("GET", "HEAD", "OPTIONS"):
                refused = csrf_protect(lambda request: None)(request)
                if refused is not None:
                    return refused
        if not user.is_authenticated:
            if token == "":
                return api_unauthenticated("Authorization: Bearer needs a token or a bot key")
            return api_unauthenticated("log in or send a Bearer token")
        request.bot_key = key  # type: ignore[attr-defined]
        try:
            return view(request, user, *args, **kwargs)
        except ChatError as error:
            return api_refusal(error)

    return wrapper


def api_refusal(error: ChatError) -> JsonResponse:
    """A ChatError as the API answers it: {error, detail} and the numbers it carries
    (a limit, a quota and what is used of it, a wait), with the code's status
    (ERROR_STATUS) and Retry-After."""
    body: dict[str, Any] = {"error": error.code, "detail": error.detail}
    if error.limit is not None:
        body["limit"] = error.limit
    if error.quota is not None:
        body["quota"], body["used"] = error.quota, error.used
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
    response = JsonResponse(body, status=ERROR_STATUS.get(error.code, 400))
    if error.retry_after is not None:
        response["Retry-After"] = str(math.ceil(error.retry_after))
    return response


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body, read as strictly as a socket's frames, or ChatError(bad_request)."""
    return protocol.decode(request.body, noun="body")


def json_object(request: HttpRequest) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise ChatError("bad_request", "the body is not a JSON object")
    return body


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
    return events.room_entry_payload(entry, online=online)


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
    payload = events.message_payload(sent.message, for_author=True)
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


def query_number(request: HttpRequest, name: str, *, low: int, high: int) -> int | None:
    """An optional whole-number query parameter within [low, high], or bad_request."""
    raw = request.GET.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 30 or not low <= int(raw) <= high:
        raise ChatError("bad_request", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


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
        events.history_payload(page, user_id=user.pk), json_dumps_params=JSON_STRICT
    )


# --- files (docs/files.md) ------------------------------------------------------


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
    (chat.upload_limit refuses it before Django copies it, under ASGI). Over the
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
        events.attachment_payload(attachment), status=201, json_dumps_params=JSON_STRICT
    )


def file_reader(request: HttpRequest) -> tuple[Any, BotKey | None]:
    """Who fetches a file: a Bearer token's user, a bot key (and its bot), else the
    session's user."""
    token = bearer(request)
    if token is None:
        return request.user, None
    if looks_like_key(token):
        key = bot_key_check(token)
        return (key.user, key) if key is not None else (AnonymousUser(), None)
    return token_check(token).user or AnonymousUser(), None


@require_http_methods(["GET", "HEAD"])
def file_download(request: HttpRequest, pk: int, name: str) -> HttpResponseBase:
    """GET /files/<id>/<name>: the file, to whoever may read its message's room; else 404.

    The name is the file's own, for the reader's sake: the id alone says which.
    """
    return _file(request, pk, thumbnail=False)


@require_http_methods(["GET", "HEAD"])
def file_thumbnail(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET /files/<id>/thumbnail/: an image's thumbnail (WebP), as the file itself is served."""
    return _file(request, pk, thumbnail=True)


def _file(request: HttpRequest, pk: int, *, thumbnail: bool) -> HttpResponseBase:
    reader, key = file_reader(request)
    missing = Missing(
        "There is no file at this address, or you may not open it.", heading="No such file"
    )
    try:
        attachment = attachment_for_reader(user=reader, pk=pk)
    except ChatError:
        raise missing from None
    if key is not None and not key_may_fetch(key, attachment):
        raise missing
    if thumbnail and not attachment.thumbnail:
        raise missing
    return file_response(request, attachment, thumbnail=thumbnail)


def key_may_fetch(key: BotKey, attachment: Any) -> bool:
    """A bot key fetches its bot's own uploads and the files of its rooms' messages only."""
    if attachment.uploader_id == key.user_id:
        return True
    message = attachment.message
    return message is not None and key.rooms.filter(pk=message.room_id).exists()


def search_result(hit: Hit, *, user_id: int) -> dict[str, Any]:
    """A result as /api/search/ answers it."""
    message = hit.message
    return events.search_result_payload(
        message,
        snippet=[{"text": segment.text, "match": segment.match} for segment in hit.snippet],
        url=permalink(message),
        for_author=message.author_id == user_id,
    )


@require_GET
@api_view
def api_search(request: HttpRequest, user: User) -> JsonResponse:
    """GET /api/search/?q=...[&room=][&user=][&before=][&after=][&page=]: the messages
    the user may read that match, best first, a page at a time (chat/search.py)."""
    search = search_parse(request.GET)
    search_count(user)
    page = messages_search(user=user, search=search)
    following = next_page_query(request.GET, page)
    return JsonResponse(
        {
            "results": [search_result(hit, user_id=user.pk) for hit in page.hits],
            "next": None if following is None else f"{request.path}?{following}",
        },
        json_dumps_params=JSON_STRICT,
    )


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    """The search page: the same search as /api/search/, its form, and its results."""
    assert isinstance(request.user, User)
    user = request.user
    params = request.GET
    rooms = list(Room.objects.visible_to(user).order_by())
    titles = room_titles(rooms, user)
    context: dict[str, Any] = {
        "q": params.get("q", ""),
        "room_filter": params.get("room", ""),
        "user_filter": params.get("user", ""),
        "before": params.get("before", ""),
        "after": params.get("after", ""),
        "rooms": sorted(
            ((titles[room.pk], room.slug) for room in rooms), key=lambda room: room[0].casefold()
        ),
        "page": None,
    }
    status = 200
    if any(params.get(name) for name in ("q", "room", "user", "before", "after", "page")):
        retry_after = None
        try:
            search = search_parse(params)
            search_count(user)
            page: SearchPage = messages_search(user=user, search=search)
        except ChatError as error:
            status = ERROR_STATUS.get(error.code, 400)
            context["error"] = error.detail
            retry_after = error.retry_after
        else:
            context.update(search_page_context(request, page, titles))
        if retry_after is not None:
            context["error"] += f". Try again in {math.ceil(retry_after)} seconds."
            response = render(request, "chat/search.html", context, status=status)
            response["Retry-After"] = str(math.ceil(retry_after))
            return response
    return render(request, "chat/search.html", context, status=status)


def search_count(user: User) -> None:
    """Count one search against CHAT_SEARCH_RATE_LIMIT: ChatError(rate_limited) beyond it.

    A search reads an index over every readable room; one person's loop of them
    would take a worker's database thread from everyone else.
    """
    with rate_place_blocking(user_id=user.pk, what="searches") as place:
        place.kept = True


def search_page_context(
    request: HttpRequest, page: SearchPage, titles: dict[int, str]
) -> dict[str, Any]:
    """The results of a search as the page shows them, and its links to other pages."""
    following = next_page_query(request.GET, page)
    previous = None
    if page.page > 1:
        earlier = request.GET.copy()
        earlier["page"] = str(page.page - 1)
        previous = earlier.urlencode()
    return {
        "page": page,
        "results": [
            {
                "message": hit.message,
                "room_title": titles.get(hit.message.room_id, hit.message.room.name),
                "snippet": hit.snippet,
                "url": permalink(hit.message),
            }
            for hit in page.hits
        ],
        "next_query": following,
        "previous_query": previous,
        "first_number": (page.page - 1) * SEARCH_PAGE_SIZE + 1,
        "candidates": SEARCH_CANDIDATES,
    }


# --- people (chat/people.py) --------------------------------------------------------


def people_count(user: User) -> None:
    """Count one look-up of people against CHAT_PEOPLE_RATE_LIMIT (the picker asks as
    one types): ChatError(rate_limited) beyond it."""
    with rate_place_blocking(user_id=user.pk, what="people") as place:
        place.kept = True


@require_GET
@api_view
def api_users(request: HttpRequest, user: User) -> JsonResponse:
    """GET /api/users/?q=<name>[&limit=<n>]: people to talk to, by name (docs/protocol.md)."""
    query, limit = people_query(request.GET)
    people_count(user)
    found = people_find(user=user, query=query, limit=limit)
    return JsonResponse(
        {"users": [person_payload(person) for person in found.people], "more": found.more},
        json_dumps_params=JSON_STRICT,
    )


@login_required
def people_page(request: HttpRequest) -> HttpResponse:
    """Everyone one may talk to, or those a name finds: each opens the conversation."""
    assert isinstance(request.user, User)
    context: dict[str, Any] = {"q": request.GET.get("q", ""), "found": None}
    try:
        query, _ = people_query(request.GET)
        people_count(request.user)
        context["found"] = people_find(user=request.user, query=query, limit=PEOPLE_LIMIT_MAX)
    except ChatError as error:
        wait = None if error.retry_after is None else math.ceil(error.retry_after)
        context["error"] = error.detail
        if wait is not None:
            context["error"] += f". Try again in {wait} seconds."
        status = ERROR_STATUS.get(error.code, 400)
        response = render(request, "chat/people.html", context, status=status)
        if wait is not None:
            response["Retry-After"] = str(wait)
        return response
    return render(request, "chat/people.html", context)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF refusals: JSON under /api/, the site's own page elsewhere."""
    if request.path.startswith("/api/"):
        return api_error(403, "forbidden", f"CSRF check failed: {reason}")
    # Django's page carries inline styles, which the site's CSP refuses.
    return render(request, "403_csrf.html", status=403)


@csrf_exempt
@require_POST
def api_token(request: HttpRequest) -> JsonResponse:
    """Credentials in the body (no CSRF), or `{}` from a session (with CSRF)."""
    try:
        body = json_object(request)
    except ChatError as error:
        return api_error(400, error.code, error.detail)
    if not body:
        # No session, nothing for CSRF to protect: say 401 (as the contract does)
        # rather than letting csrf_protect answer an HTML 403.
        if not request.user.is_authenticated:
            return api_error(401, "unauthenticated", "log in, or send username and password")
        return _session_token(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return api_error(400, "bad_request", "username and password must be strings")
    # The same budget as the log-in form: a token is a log-in.
    keys, seconds = login_keys(request, username), settings.CHAT_LOGIN_LIMIT[1]
    wait = throttle_wait(keys, seconds=seconds)
    if wait:
        response = JsonResponse(
            {"error": "rate_limited", "detail": wait_detail(wait), "retry_after": wait},
            status=429,
        )
        response["Retry-After"] = str(int(wait))
        return response
    user = authenticate(request, username=username, password=password)
    if user is None:
        throttle_count(keys, seconds=seconds)
        return api_error(401, "unauthenticated", "wrong username or password, or inactive user")
    return JsonResponse({"token": token_issue(user=user), "expires_in": settings.CHAT_TOKEN_TTL})


@csrf_protect
def _session_token(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return api_error(401, "unauthenticated", "log in, or send username and password")
    return JsonResponse(
        {"token": token_issue(user=request.user), "expires_in": settings.CHAT_TOKEN_TTL}
    )


def health_details_shown(request: HttpRequest) -> bool:
    """Whether /healthz may say why a part fails (its error text names hosts and
    versions): to staff, and to a probe on this machine that came through no proxy."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    local = request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")
    return local and "HTTP_X_FORWARDED_FOR" not in request.META


@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """The database and every Redis shard, each checked (docs/protocol.md, HTTP API).

    503 when the database is down, or every shard: the worker can serve nothing
    then. A shard down serves its rooms no more, and the worker all the others:
    200, "degraded", naming the shard. Why a part fails is said to
    health_details_shown only.
    """
    report: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["db"] = "ok"
    except DatabaseError as error:
        report["db"] = "error"
        report["db_error"] = str(error).strip().splitlines()[0][:200] if str(error) else "error"
    layer = get_channel_layer()
    failures = async_to_sync(shards_ping)(layer)
    shards: list[dict[str, Any]] = [
        {"shard": index, "status": "ok" if failure is None else "error"}
        for index, failure in enumerate(failures)
    ]
    details = health_details_shown(request)
    for shard, failure, name in zip(shards, failures, shard_names(layer), strict=True):
        if details:
            shard["name"] = name
            if failure is not None:
                shard["error"] = repr(failure)[:200]
    down = [shard["shard"] for shard in shards if shard["status"] == "error"]
    report["redis"] = "ok" if not down else "error" if len(down) == len(shards) else "degraded"
    if details and report["redis"] == "error":
        report["redis_error"] = str(shards[0].get("error", "error"))
    if len(shards) > 1:
        report["redis_shards"] = shards
    ok = report["db"] == "ok" and report["redis"] != "error"
    status = "ok" if not down and ok else "degraded" if ok else "unavailable"
    if details and (wire.stats.sockets or wire.stats.fallback):
        # Under daphne, once a socket has opened: whether broadcast frames go shared.
        report["wire"] = wire.stats.report()
    if not details:
        report = {name: value for name, value in report.items() if not name.endswith("_error")}
    return JsonResponse({"status": status, **report}, status=200 if ok else 503)

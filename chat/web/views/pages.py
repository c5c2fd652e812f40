"""The site's pages. Every room goes through chat.domain.access.room_for_user."""

from __future__ import annotations

import math
import re
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from chat.actions.membership import (
    DESCRIPTION_MAX,
    NAME_MAX,
    invite_accept,
    invite_find,
    invite_problem,
    room_create,
    room_join,
)
from chat.domain import events, payloads
from chat.domain.access import may_publish, role_of, room_for_user
from chat.domain.attention import notify_of, room_titles
from chat.domain.direct import direct_room_find, direct_room_open
from chat.domain.inputs import MAX_NUMBER
from chat.domain.limits import (
    rate_place_blocking,
)
from chat.domain.mutes import mute_state
from chat.errors import ChatError
from chat.models import Membership, Message, Notify, ReadState, Role, Room
from chat.web.errorpages import NO_SUCH_ROOM, Missing
from chat.web.views.common import ERROR_STATUS, PAGE_SIZE, query_number, rooms_payload


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
                (m, events.dumps(payloads.message_payload(m, for_author=m.author_id == user.pk)))
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

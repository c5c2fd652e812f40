"""Small helpers shared by the test modules."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client

from chat.domain.writes import message_create
from chat.errors import ChatError
from chat.models import Message


def send(room, author, body: str = "hello", client_id: str | None = None) -> Message:
    """Store a message as the socket would, without a socket."""
    message, _ = message_create(room_id=room.pk, author=author, body=body, client_id=client_id)
    return message


def logged_in(user) -> Client:
    """A test client with `user`'s session."""
    client = Client()
    client.force_login(user)
    return client


@database_sync_to_async
def session_cookie(user) -> tuple[bytes, bytes]:
    """The header a socket sends with `user`'s session, from async code."""
    client = logged_in(user)
    name = settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


def current_database_url() -> str:
    """The DATABASE_URL of the database this test runs on, for a process of its own."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    user = quote(database["USER"], safe="")
    password = quote(database["PASSWORD"], safe="")
    return f"postgres://{user}:{password}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def room_admin_form(room, *, members: dict) -> dict:
    """The admin's change form of `room` as posted: its fields, and its members' inline
    set to `members` (user -> role): rows kept, changed, deleted and added."""
    from chat.models import Membership

    data = {
        "name": room.name,
        "slug": room.slug,
        "description": room.description,
        "kind": room.kind,
        "invites-TOTAL_FORMS": "0",
        "invites-INITIAL_FORMS": "0",
    }
    if room.archived:
        data["archived"] = "on"
    existing = list(Membership.objects.filter(room=room).order_by("pk"))
    wanted = {user.pk: role for user, role in members.items()}
    rows = []
    for membership in existing:
        row = {"id": membership.pk, "room": room.pk, "user": membership.user_id}
        if membership.user_id in wanted:
            row["role"] = wanted.pop(membership.user_id)
        else:
            row["role"], row["DELETE"] = membership.role, "on"
        rows.append(row)
    rows += [{"id": "", "room": room.pk, "user": pk, "role": role} for pk, role in wanted.items()]
    data["memberships-TOTAL_FORMS"] = str(len(rows))
    data["memberships-INITIAL_FORMS"] = str(len(existing))
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"memberships-{index}-{name}"] = value
    return data


# The admin's room form with no rows in its inlines (members, invites).
NO_INLINES = {
    "memberships-TOTAL_FORMS": "0",
    "memberships-INITIAL_FORMS": "0",
    "invites-TOTAL_FORMS": "0",
    "invites-INITIAL_FORMS": "0",
}


def code_of(call, **kwargs) -> str:
    """The ChatError code `call(**kwargs)` raises (fails if it raises none)."""
    with pytest.raises(ChatError) as caught:
        call(**kwargs)
    return caught.value.code

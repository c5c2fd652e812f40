"""Small helpers shared by the test modules."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection
from django.test import Client

from chat.models import Message
from chat.services import message_create


def send(room, author, body: str = "hello", client_id: str | None = None) -> Message:
    """Store a message as the socket would, without a socket."""
    message, _ = message_create(room_id=room.pk, author=author, body=body, client_id=client_id)
    return message


def logged_in(user) -> Client:
    """A test client with `user`'s session."""
    client = Client()
    client.force_login(user)
    return client


def current_database_url() -> str:
    """The DATABASE_URL of the database this test runs on, for a process of its own."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    user = quote(database["USER"], safe="")
    password = quote(database["PASSWORD"], safe="")
    return f"postgres://{user}:{password}@{database['HOST']}:{database['PORT']}/{database['NAME']}"

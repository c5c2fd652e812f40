"""Who gets a file's bytes, and how long a browser may keep them (chat/files/serving.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.domain.bots import bot_account, bot_key_issue
from chat.models import Room
from tests.attachments_helpers import attached, content, create, fetch, image_bytes, media  # noqa: F401
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


def test_a_browser_asks_again_before_each_use_and_gets_304_while_it_may_read(alice, bob, general):
    """Files used to be cached for an hour: a removed member kept them that long."""
    private = Room.objects.create(name="Ops", slug="ops", kind=Room.Kind.PRIVATE)
    private.members.add(alice, bob)
    photo = attached(private, alice, image_bytes(), "p.png")
    reader = logged_in(bob)
    first = fetch(reader, photo)
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-cache"
    etag, modified = first["ETag"], first["Last-Modified"]
    again = fetch(reader, photo, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and not content(again)
    assert fetch(reader, photo, HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    thumbnail = fetch(reader, photo, thumbnail=True)
    assert thumbnail["ETag"] != etag
    assert fetch(reader, photo, thumbnail=True, HTTP_IF_NONE_MATCH=etag).status_code == 200
    # Removed from the room: the revalidation is refused like any fetch.
    private.members.remove(bob)
    assert fetch(reader, photo, HTTP_IF_NONE_MATCH=etag).status_code == 404


def test_a_bot_key_fetches_only_its_own_uploads_and_its_rooms_files(alice, general):
    elsewhere = Room.objects.create(name="Elsewhere", slug="elsewhere")
    theirs = attached(elsewhere, alice, image_bytes(), "e.png")
    here = attached(general, alice, image_bytes(), "g.png")
    bot = bot_account("scorebot")
    own = create(bot, image_bytes(), "own.png")
    _, key = bot_key_issue(user=bot, rooms=[general])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert fetch(client, here).status_code == 200
    assert fetch(client, own).status_code == 200
    # A public room the bot's account could read, but not the key's.
    assert fetch(client, theirs).status_code == 404

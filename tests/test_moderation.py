"""Moderation reaches open sockets at once: chat/sockets/moderation.py, through real Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory
from django.utils import timezone

from chat.admin import RoomAdmin
from chat.models import Message, Mute, Room
from chat.sockets import watcher
from tests.helpers import logged_in, room_admin_form

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frames_without_presence"),
]

ORIGIN = (b"origin", b"http://localhost")


@database_sync_to_async
def bodies(room: Room) -> list[str]:
    return list(Message.objects.filter(room=room).order_by("number").values_list("body", flat=True))


@database_sync_to_async
def save(instance: Any, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.save()


async def send_body(sock, body: str, client_id: str = "c1") -> dict[str, Any]:
    await sock.send({"type": "message.send", "body": body, "client_id": client_id})
    return await sock.receive()


@pytest.fixture
def world(db, alice, bob) -> Room:
    """A private room of alice and bob."""
    room = Room.objects.create(name="World", slug="world", kind=Room.Kind.PRIVATE)
    room.members.add(alice, bob)
    return room


async def session_socket(connect, client: Client, slug: str = "general"):
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    sock, welcome = await connect(None, slug, headers=[ORIGIN, cookie])
    assert welcome is not None
    return sock


# --- accounts ----------------------------------------------------------------


@pytest.mark.redis
async def test_deactivation_closes_every_socket_of_the_user_with_4403(
    connect, alice, bob, general, world
):
    a1, _ = await connect(alice)
    a2, _ = await connect(alice, "world")
    b, _ = await connect(bob)
    await save(alice, is_active=False)
    assert await a1.closed_with() == 4403
    assert await a2.closed_with() == 4403
    await b.send({"type": "ping"})
    assert (await b.receive())["type"] == "pong"


@pytest.mark.redis
async def test_a_deactivated_users_frames_are_not_acted_on(connect, alice, general):
    """Even one sent before the close reached the socket: the write reads the account."""
    a, _ = await connect(alice)
    await database_sync_to_async(type(alice).objects.filter(pk=alice.pk).update)(is_active=False)
    # update() sends no signal: only the account read inside the write stops it.
    await a.send({"type": "message.send", "body": "after the ban", "client_id": "c1"})
    assert await a.closed_with() == 4403
    assert await bodies(await database_sync_to_async(Room.objects.get)(slug="general")) == []


async def test_a_user_deactivated_during_the_handshake_is_refused(
    connect, alice, general, monkeypatch
):
    """Authenticated, then deactivated before the socket joined its groups: refused 4403."""

    real = watcher.epoch_watch_join

    async def deactivate_then_join(layer, consumer):
        await database_sync_to_async(type(alice).objects.filter(pk=alice.pk).update)(
            is_active=False
        )
        return await real(layer, consumer)

    monkeypatch.setattr(watcher, "epoch_watch_join", deactivate_then_join)
    sock, _ = await connect(alice, expect_welcome=False)
    assert await sock.closed_with() == 4403


@pytest.mark.redis
async def test_deleting_a_user_closes_their_sockets_with_4403(connect, alice, general):
    a, _ = await connect(alice)
    await database_sync_to_async(alice.delete)()
    assert await a.closed_with() == 4403


@pytest.mark.redis
async def test_a_password_change_closes_every_socket_with_4401(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    @database_sync_to_async
    def change() -> None:
        alice.set_password("a-new-Password-2026")
        alice.save()

    await change()
    assert await a.closed_with() == 4401
    assert await b.nothing()


@pytest.mark.redis
async def test_saving_a_user_otherwise_leaves_their_sockets_open(connect, alice, general):
    a, _ = await connect(alice)
    await save(alice, first_name="Alice")
    await database_sync_to_async(alice.save)(update_fields=["last_login"])
    await a.send({"type": "ping"})
    assert (await a.receive())["type"] == "pong"


@pytest.mark.redis
async def test_logout_closes_the_sockets_of_that_session_only(connect, alice, general):
    phone, laptop = (
        await database_sync_to_async(logged_in)(alice),
        await database_sync_to_async(logged_in)(alice),
    )
    on_phone = await session_socket(connect, phone)
    on_laptop = await session_socket(connect, laptop)
    by_token, _ = await connect(alice)
    response = await database_sync_to_async(phone.post)("/accounts/logout/")
    assert response.status_code == 302
    assert await on_phone.closed_with() == 4401
    for sock in (on_laptop, by_token):
        await sock.send({"type": "ping"})
        assert (await sock.receive())["type"] == "pong"
    # And the old cookie no longer opens a socket.
    cookie = (b"cookie", f"sessionid={phone.cookies['sessionid'].value}".encode())
    again, _ = await connect(None, headers=[ORIGIN, cookie], expect_welcome=False)
    assert await again.closed_with() == 4401


# --- rooms -------------------------------------------------------------------


@pytest.mark.redis
async def test_a_removed_member_loses_their_socket_to_the_room(connect, alice, bob, general, world):
    a, _ = await connect(alice, "world")
    b, _ = await connect(bob, "world")
    b_general, _ = await connect(bob, "general")
    await database_sync_to_async(world.members.remove)(bob)
    assert await b.closed_with() == 4404
    for sock in (a, b_general):
        await sock.send({"type": "ping"})
        assert (await sock.receive())["type"] == "pong"
    again, _ = await connect(bob, "world", expect_welcome=False)
    assert await again.closed_with() == 4404


@pytest.mark.parametrize("how", ["user side", "clear", "admin form"])
@pytest.mark.redis
async def test_membership_lost_any_way_closes_the_socket(connect, alice, bob, world, how):
    b, _ = await connect(bob, "world")

    @database_sync_to_async
    def remove() -> None:
        if how == "user side":
            bob.chat_rooms.remove(world)
        elif how == "clear":
            world.members.clear()
        else:
            admin = type(alice).objects.create_superuser("boss", password="boss-Pass-2026")
            client = Client()
            client.force_login(admin)
            response = client.post(
                f"/admin/chat/room/{world.pk}/change/",
                room_admin_form(world, members={alice: "member"}),
            )
            assert response.status_code == 302, response.content

    await remove()
    assert await b.closed_with() == 4404


@pytest.mark.redis
async def test_removal_from_a_public_room_changes_nothing(connect, alice, general):
    await database_sync_to_async(general.members.add)(alice)
    a, _ = await connect(alice)
    await database_sync_to_async(general.members.remove)(alice)
    await a.send({"type": "ping"})
    assert (await a.receive())["type"] == "pong"


@pytest.mark.redis
async def test_archiving_in_the_admin_makes_open_sockets_read_only_at_once(
    connect, alice, bob, general
):
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    @database_sync_to_async
    def archive() -> None:
        request = RequestFactory().post("/admin/chat/room/")
        request.user = type(alice).objects.create_superuser("boss", password="boss-Pass-2026")
        request._messages = []  # the action reports with message_user
        RoomAdmin(Room, site).set_archived(Room.objects.filter(pk=general.pk), archived=True)

    await archive()
    for sock in (a, b):
        frame = await sock.receive()
        assert frame == {
            "type": "room",
            "room": {
                "slug": "general",
                "name": "General",
                "kind": "public",
                "archived": True,
                "live_comments": False,
            },
        }
    error = await send_body(a, "too late")
    assert (error["type"], error["code"], error["client_id"]) == ("error", "room_archived", "c1")
    assert await b.nothing()
    await save(general, archived=False)
    assert (await a.receive())["room"]["archived"] is False
    assert (await send_body(a, "back", client_id="c2"))["type"] == "message"


@pytest.mark.redis
async def test_a_room_made_private_closes_the_sockets_of_non_members(connect, alice, bob, general):
    a, _ = await connect(alice)
    b, _ = await connect(bob)

    @database_sync_to_async
    def make_private() -> None:
        from django.db import transaction

        with transaction.atomic():  # as the admin does: the room, then its members
            general.kind = Room.Kind.PRIVATE
            general.save()
            general.members.add(alice)

    await make_private()
    assert (await a.receive())["room"]["kind"] == "private"
    assert await b.closed_with() == 4404


@pytest.fixture
def stage(db) -> Room:
    return Room.objects.create(
        name="Stage", slug="stage", kind=Room.Kind.BROADCAST, public_viewing=True
    )


@pytest.mark.parametrize(
    "change, alice_stays",
    [({"public_viewing": False}, True), ({"kind": Room.Kind.PRIVATE}, False)],
)
@pytest.mark.redis
async def test_viewers_who_may_no_longer_watch_are_closed_live(
    connect, alice, stage, change, alice_stays
):
    """Closing a broadcast room to viewers, or making it private, ends the sockets of
    those it now refuses, at once, as a new socket of theirs would be refused."""
    viewer, welcome = await connect(None, "stage", headers=[ORIGIN])
    assert welcome is not None and welcome["user"] is None
    a, _ = await connect(alice, "stage")
    await save(stage, **change)
    assert await viewer.closed_with() == 4401
    if alice_stays:
        assert (await a.receive_type("room"))["room"]["kind"] == "broadcast"
    else:
        assert await a.closed_with() == 4404
    again, welcome = await connect(None, "stage", headers=[ORIGIN], expect_welcome=False)
    assert await again.closed_with() == 4401


# --- mutes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, until, muted",
    [
        ("room", None, True),
        ("everywhere", None, True),
        ("room", timedelta(hours=1), True),
        ("room", timedelta(seconds=-1), False),  # expired
        ("other room", None, False),
    ],
)
@pytest.mark.redis
async def test_a_muted_users_sends_get_muted(connect, alice, bob, general, where, until, muted):
    other = await database_sync_to_async(Room.objects.create)(name="Other", slug="other")
    room = {"room": general, "everywhere": None, "other room": other}[where]
    await database_sync_to_async(Mute.objects.create)(
        user=alice, room=room, until=until and timezone.now() + until
    )
    a, welcome = await connect(alice)
    b, _ = await connect(bob)
    reply = await send_body(a, "hello")
    if muted:
        assert (reply["type"], reply["code"], reply["client_id"]) == ("error", "muted", "c1")
        # The page knew before anything was sent: the welcome names the same mute.
        scope = "all" if where == "everywhere" else "room"
        assert welcome["mute"]["scope"] == scope
        words = "in every room" if scope == "all" else "in this room"
        assert reply["detail"].startswith(f"you are muted {words}")
        if until:
            assert welcome["mute"]["until"].endswith("Z")
            assert reply["detail"] == f"you are muted {words} until {welcome['mute']['until']}"
        else:
            assert welcome["mute"]["until"] is None and "until" not in reply["detail"]
        assert await b.nothing()
        assert await bodies(general) == []
    else:
        assert welcome["mute"] is None
        assert reply["type"] == "message"
        assert (await b.receive())["body"] == "hello"


@pytest.mark.redis
async def test_a_mute_holds_from_the_next_send_and_covers_edits(connect, alice, general):
    a, _ = await connect(alice)
    assert (await send_body(a, "before"))["type"] == "message"
    mute = await database_sync_to_async(Mute.objects.create)(user=alice, room=general)
    # The open page hears of the mute at once, before anything is typed.
    assert await a.receive() == {"type": "mute", "mute": {"scope": "room", "until": None}}
    assert (await send_body(a, "during", client_id="c2"))["code"] == "muted"
    await a.send({"type": "message.edit", "id": 1, "body": "rewritten"})
    assert (await a.receive())["code"] == "muted"
    # A resend of what was stored before the mute is still acknowledged.
    assert (await send_body(a, "before"))["id"] == 1
    await database_sync_to_async(mute.delete)()
    assert await a.receive() == {"type": "mute", "mute": None}
    assert (await send_body(a, "after", client_id="c3"))["id"] == 2
    assert await bodies(general) == ["before", "after"]


@pytest.mark.redis
async def test_a_mute_reaches_each_open_room_with_what_holds_there(connect, alice, bob, general):
    """A mute of every room, then one of this room that lasts longer: each socket is told
    the mute that keeps its reader silent longest in its own room; others hear nothing."""
    other = await database_sync_to_async(Room.objects.create)(name="Other", slug="other")
    here, _ = await connect(alice)
    there, _ = await connect(alice, "other")
    bystander, _ = await connect(bob)
    end = timezone.now() + timedelta(hours=2)
    everywhere = await database_sync_to_async(Mute.objects.create)(user=alice, until=end)
    told = {"scope": "all", "until": end.isoformat(timespec="minutes").replace("+00:00", "Z")}
    for sock in (here, there):
        assert await sock.receive() == {"type": "mute", "mute": told}
    await database_sync_to_async(Mute.objects.create)(user=alice, room=general)
    assert await here.receive() == {"type": "mute", "mute": {"scope": "room", "until": None}}
    assert await there.receive() == {"type": "mute", "mute": told}
    reply = await send_body(there, "hi")
    assert reply["detail"] == f"you are muted in every room until {told['until']}"
    await database_sync_to_async(everywhere.delete)()
    assert await here.receive() == {"type": "mute", "mute": {"scope": "room", "until": None}}
    assert await there.receive() == {"type": "mute", "mute": None}
    assert (await send_body(there, "free again", client_id="c2"))["type"] == "message"
    assert await bystander.nothing()
    del other


async def test_the_room_page_knows_the_mute_before_the_socket_opens(alice, bob, general):
    end = timezone.now() + timedelta(minutes=30)
    await database_sync_to_async(Mute.objects.create)(user=alice, until=end)
    client = await database_sync_to_async(logged_in)(alice)
    page = await database_sync_to_async(client.get)("/rooms/general/")
    until = end.isoformat(timespec="minutes").replace("+00:00", "Z")
    mute = f'{{"scope":"all","until":"{until}"}}'.replace('"', "&quot;")
    assert f'data-mute="{mute}"' in page.content.decode()
    other = await database_sync_to_async(logged_in)(bob)
    assert (
        'data-mute="null"'
        in (await database_sync_to_async(other.get)("/rooms/general/")).content.decode()
    )

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from chat.notes.consumer import NotesConsumer
from chat.protocol import CloseCode
from chat.sockets.me import MeConsumer
from chat.sockets.room import RoomConsumer


class NoSuchRoomConsumer(AsyncWebsocketConsumer):
    """A socket to a path that names no room: accepted, then closed with 4404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=int(CloseCode.NOT_FOUND))  # daphne takes a plain int only


websocket_urlpatterns = [
    # Any single path segment reaches the room consumer, which answers unknown
    # or malformed slugs with 4404.
    re_path(r"^ws/rooms/(?P<slug>[^/]+)/$", RoomConsumer.as_asgi()),
    # A room's shared notes: y-protocols over binary frames (docs/protocol.md).
    re_path(r"^ws/rooms/(?P<slug>[^/]+)/notes/$", NotesConsumer.as_asgi()),
    # Every signed-in page's own socket: counts of every room, notifications.
    re_path(r"^ws/me/$", MeConsumer.as_asgi()),
    # Every other path too (no trailing slash, an empty slug, extra segments):
    # a clean 4404, never the router's "no route" error (an HTTP 500).
    re_path(r"", NoSuchRoomConsumer.as_asgi()),
]

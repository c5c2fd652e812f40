from django.urls import re_path

from chat.consumers import NoSuchRoomConsumer, RoomConsumer

websocket_urlpatterns = [
    # Any single path segment reaches the room consumer, which answers unknown
    # or malformed slugs with 4404.
    re_path(r"^ws/rooms/(?P<slug>[^/]+)/$", RoomConsumer.as_asgi()),
    # Every other path too (no trailing slash, an empty slug, extra segments):
    # a clean 4404, never the router's "no route" error (an HTTP 500).
    re_path(r"", NoSuchRoomConsumer.as_asgi()),
]

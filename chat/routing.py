from django.urls import re_path

from chat.consumers import RoomConsumer

# Any path segment reaches the consumer, which answers unknown or malformed
# slugs with 4404 instead of a bare handshake failure.
websocket_urlpatterns = [
    re_path(r"^ws/rooms/(?P<slug>[^/]+)/$", RoomConsumer.as_asgi()),
]

"""ASGI entry point.

HTTP goes to Django, uploads past the size limit stopped in front of it
(chat.files.upload_limit); sockets pass the Origin gate, then auth, then chat.sockets.routing.
A Redis configuration that cannot work stops the worker here, before it serves.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from chat.files.upload_limit import UploadLimit  # noqa: E402
from chat.platform.redis.checks import startup_check  # noqa: E402
from chat.sockets.routing import websocket_urlpatterns  # noqa: E402
from chat.web.middleware import (  # noqa: E402
    OriginGate,
    SocketAuthMiddleware,
    SocketSessionMiddleware,
)

# A worker with a Redis configuration that cannot work refuses to start, saying why.
startup_check(settings.CHAT_REDIS)

application = ProtocolTypeRouter(
    {
        "http": UploadLimit(django_asgi_app),
        "websocket": OriginGate(
            CookieMiddleware(
                SocketSessionMiddleware(SocketAuthMiddleware(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)

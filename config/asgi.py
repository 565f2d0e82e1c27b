"""ASGI entry point: Django for HTTP, Channels consumers for WebSockets."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from server.asgi_handler import get_single_hop_asgi_application

# Django must be set up before the consumers (and the models they import) are imported.
django_asgi_app = get_single_hop_asgi_application()

from typing import Any  # noqa: E402

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.ws_auth import WebSocketAuthMiddlewareStack  # noqa: E402
from tickets.routing import websocket_urlpatterns  # noqa: E402


def application_for(http_application: Any, *, websocket_router: Any = None) -> ProtocolTypeRouter:
    """The whole app: `http_application` for HTTP, the ticket sockets behind auth and origin checks
    (accounts/ws_auth.py: refusals are closes with a code, after the handshake)."""
    router = websocket_router or URLRouter(websocket_urlpatterns)
    return ProtocolTypeRouter(
        {
            "http": http_application,
            "websocket": WebSocketAuthMiddlewareStack(router),
        }
    )


application = application_for(django_asgi_app)

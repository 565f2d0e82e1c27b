"""ASGI entry point: Django for HTTP, Channels consumers for WebSockets."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from core.asgi_handler import get_single_hop_asgi_application

# Django must be set up before the consumers (and the models they import) are imported.
django_asgi_app = get_single_hop_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from core.ws_auth import PortalOriginValidator, WebSocketAuthMiddlewareStack  # noqa: E402
from tickets.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # In development daphne serves the static files too; production puts them behind the proxy.
        "http": ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app,
        "websocket": PortalOriginValidator(WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

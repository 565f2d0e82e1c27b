"""WebSocket routes; any other path is accepted and closed with 4404."""

from django.urls import path, re_path

from tickets.consumers import NoSuchSocketConsumer, TicketUpdatesConsumer, UpdatesStreamConsumer

websocket_urlpatterns = [
    path("api/v1/tickets/<str:ticket_id>/updates", TicketUpdatesConsumer.as_asgi()),
    path("api/v1/updates", UpdatesStreamConsumer.as_asgi()),
    re_path(r"", NoSuchSocketConsumer.as_asgi()),
]

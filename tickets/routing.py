"""WebSocket routes."""

from django.urls import path

from tickets.consumers import TicketUpdatesConsumer, UpdatesStreamConsumer

websocket_urlpatterns = [
    path("api/v1/tickets/<str:ticket_id>/updates", TicketUpdatesConsumer.as_asgi()),
    path("api/v1/updates", UpdatesStreamConsumer.as_asgi()),
]

"""The app's URLs plus the baselines the benchmarks compare against, served by the same server."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns
from tickets.models import Ticket
from tickets.selectors import TICKET_ROW_FIELDS, TICKET_ROW_RELATED


def bare_ticket_page(request: HttpRequest) -> JsonResponse:
    """The same page the list API returns for a provider (its 50 newest tickets, the same columns and
    joins), fetched with `.values()` and dumped by JsonResponse: no DRF, no authentication, no throttle,
    no serializers, no chain state."""
    provider_id = int(request.GET["provider_id"])
    rows = list(
        Ticket.objects.filter(provider_id=provider_id)
        .order_by("-created_at", "-id")
        .values(*TICKET_ROW_FIELDS, **TICKET_ROW_RELATED)[:50]
    )
    return JsonResponse(rows, safe=False)


def bare_hello(_request: HttpRequest) -> JsonResponse:
    """The floor: the cheapest JSON response Django can give on this server."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare-tickets", bare_ticket_page),
    path("bench/hello", bare_hello),
    *app_urlpatterns,
]

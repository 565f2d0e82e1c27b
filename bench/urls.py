"""The app's URLs plus the baselines the benchmarks compare against, served by the same server."""

from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns
from tickets.models import Ticket


def bare_ticket_page(request: HttpRequest) -> JsonResponse:
    """The same page the list API returns for a provider (50 newest tickets with deployment and provider),
    fetched with `.values()` and dumped by JsonResponse: no DRF, no authentication, no serializers."""
    provider_id = int(request.GET["provider_id"])
    rows = list(
        Ticket.objects.filter(provider_id=provider_id)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "number",
            "subject",
            "description",
            "category",
            "priority",
            "status",
            "created_at",
            "updated_at",
            "resolved_at",
            "closed_at",
            "metadata",
            "assignee_kind",
            "created_by_label",
            deployment_lease_id=F("deployment__lease_id"),
            deployment_name=F("deployment__name"),
            provider_address=F("provider__address"),
            provider_name=F("provider__name"),
        )[:50]
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

"""The app's URLs plus the baselines the benchmarks compare against, served by the same server."""

from functools import lru_cache

import orjson
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns
from core.prepared import prepared_statements
from tickets.models import Ticket
from tickets.selectors import TICKET_ROW_FIELDS, TICKET_ROW_RELATED


def _page(provider_id: int) -> QuerySet:
    """The page the list API returns for a provider: its 50 newest tickets, the same columns and joins."""
    return (
        Ticket.objects.filter(provider_id=provider_id)
        .order_by("-created_at", "-id")
        .values(*TICKET_ROW_FIELDS, **TICKET_ROW_RELATED)[:50]
    )


def bare_ticket_page(request: HttpRequest) -> JsonResponse:
    """The list API's page fetched with `.values()` and dumped by JsonResponse: no DRF, no authentication,
    no throttle, no serializers, no chain state."""
    return JsonResponse(list(_page(int(request.GET["provider_id"]))), safe=False)


@lru_cache(maxsize=1)
def _raw_page_sql() -> str:
    """The bare page's statement with its provider as the one parameter (compiled once)."""
    sql, params = _page(-1).query.sql_with_params()
    assert params == (-1,), params  # the provider is the only parameter
    return sql


def raw_ticket_page(request: HttpRequest) -> HttpResponse:
    """The floor of this data on this stack: the bare page's statement (the same rows, columns and joins),
    prepared, its rows dumped by orjson as they come from psycopg. No ORM, no authentication, no throttle,
    no SLA clock, no formatting: what any view that sends these 50 rows must at least do."""
    provider_id = int(request.GET["provider_id"])
    with prepared_statements(), connection.cursor() as cursor:
        cursor.execute(_raw_page_sql(), [provider_id])
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return HttpResponse(orjson.dumps(rows), content_type="application/json")


def bare_hello(_request: HttpRequest) -> JsonResponse:
    """The floor: the cheapest JSON response Django can give on this server."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare-tickets", bare_ticket_page),
    path("bench/raw-tickets", raw_ticket_page),
    path("bench/hello", bare_hello),
    *app_urlpatterns,
]

"""Keyset pagination for the ticket list: `?limit=` and an opaque `?cursor=`, announced in a
`Link: <…>; rel="next"` header while the body stays a plain JSON array (VirtEngine's contract).

Keyset (not offset) so that page 2,000 of 100k tickets costs what page 1 does, and rows inserted while a
client pages never shift it onto duplicates.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet

from core.errors import ValidationFailed
from core.formats import iso_timestamp, parse_iso_timestamp
from tickets.selectors import SEARCH_RANK, VISIBLE_UPDATED_AT

# The API's ordering names and the column (or annotation) each sorts on.
# `updated_at` is the party's own (customers: the last change they can see; see tickets.selectors).
SORT_COLUMNS = {
    "created_at": "created_at",
    "updated_at": VISIBLE_UPDATED_AT,
    "priority": "priority_rank",
    "sla_due": "sla_next_due",
    # Best match first (searches only): always descending.
    "relevance": SEARCH_RANK,
}
ALWAYS_DESCENDING = frozenset({"relevance"})
# Columns that may be NULL (no running SLA target): those rows come last in either direction.
NULLS_LAST = frozenset({"sla_next_due"})


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "Invalid cursor.", fields={"cursor": ["Not a cursor from this list; start again without it."]}
    )


def _encode(ordering: str, value: Any, row_id: uuid.UUID) -> str:
    raw = json.dumps(
        {
            "o": ordering,
            "v": iso_timestamp(value) if hasattr(value, "isoformat") else value,
            "id": str(row_id),
        }
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, ordering: str) -> tuple[Any, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("o") != ordering:
            raise _bad_cursor()
        row_id = uuid.UUID(str(data["id"]))
        column = SORT_COLUMNS[ordering.lstrip("-")]
        if column == "priority_rank":
            value: Any = int(data["v"])
        elif column == SEARCH_RANK:
            value = float(data["v"])
        elif data["v"] is None and column in NULLS_LAST:
            value = None
        else:
            value = parse_iso_timestamp(str(data["v"]))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise _bad_cursor() from error
    return value, row_id


def paginate(tickets: QuerySet, *, ordering: str, limit: int, cursor: str | None) -> Page:
    """One page of `tickets` (selector rows) in `ordering` (e.g. `-created_at`), after `cursor` if given."""
    descending = ordering.startswith("-") or ordering in ALWAYS_DESCENDING
    column = SORT_COLUMNS[ordering.lstrip("-")]
    nullable = column in NULLS_LAST
    nulls_last = True if nullable else None
    sort = F(column).desc(nulls_last=nulls_last) if descending else F(column).asc(nulls_last=nulls_last)
    tickets = tickets.order_by(sort, "-id" if descending else "id")
    if cursor:
        value, row_id = _decode(cursor, ordering)
        after = "lt" if descending else "gt"
        if value is None:  # into the NULL tail: only the order of ids is left
            tickets = tickets.filter(Q(**{f"{column}__isnull": True, f"id__{after}": row_id}))
        else:
            following = Q(**{f"{column}__{after}": value}) | Q(**{column: value, f"id__{after}": row_id})
            tickets = tickets.filter(following | Q(**{f"{column}__isnull": True}) if nullable else following)
    rows = list(tickets[: limit + 1])
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    last = rows[limit - 1]
    return Page(items=rows[:limit], next_cursor=_encode(ordering, last[column], last["id"]))

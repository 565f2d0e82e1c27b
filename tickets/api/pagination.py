"""Keyset pagination for the ticket list: `?limit=` and an opaque `?cursor=`, announced in a
`Link: <…>; rel="next"` header while the body stays a plain JSON array (VirtEngine's contract).

Keyset (not offset) so that page 2,000 of 100k tickets costs what page 1 does, and rows inserted while a
client pages never shift it onto duplicates.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet

from core.errors import ValidationFailed
from core.formats import iso_timestamp, parse_iso_timestamp
from core.parties import Party
from core.prepared import prepared_statements
from core.statements import StatementCache
from tickets import selectors
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


def _page_query(tickets: QuerySet, *, ordering: str, limit: int, after: tuple[Any, Any] | None) -> QuerySet:
    """The query of one page of `tickets` in `ordering`: `limit` + 1 rows (the one more says whether a
    next page exists), after the position `after` (the last row's sort value and id) if given."""
    descending = ordering.startswith("-") or ordering in ALWAYS_DESCENDING
    column = SORT_COLUMNS[ordering.lstrip("-")]
    nullable = column in NULLS_LAST
    nulls_last = True if nullable else None
    sort = F(column).desc(nulls_last=nulls_last) if descending else F(column).asc(nulls_last=nulls_last)
    tickets = tickets.order_by(sort, "-id" if descending else "id")
    if after is not None:
        value, row_id = after
        after_lookup = "lt" if descending else "gt"
        if value is None:  # into the NULL tail: only the order of ids is left
            tickets = tickets.filter(Q(**{f"{column}__isnull": True, f"id__{after_lookup}": row_id}))
        else:
            following = Q(**{f"{column}__{after_lookup}": value}) | Q(
                **{column: value, f"id__{after_lookup}": row_id}
            )
            tickets = tickets.filter(following | Q(**{f"{column}__isnull": True}) if nullable else following)
    return tickets[: limit + 1]


def _page(rows: list[Any], *, ordering: str, limit: int) -> Page:
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    last = rows[limit - 1]
    column = SORT_COLUMNS[ordering.lstrip("-")]
    return Page(items=rows[:limit], next_cursor=_encode(ordering, last[column], last["id"]))


def paginate(tickets: QuerySet, *, ordering: str, limit: int, cursor: str | None) -> Page:
    """One page of `tickets` (selector rows) in `ordering` (e.g. `-created_at`), after `cursor` if given."""
    after = _decode(cursor, ordering) if cursor else None
    query = _page_query(tickets, ordering=ordering, limit=limit, after=after)
    # A search's statement is not prepared: its text follows the words and the index's answer.
    with prepared_statements(enabled=SEARCH_RANK not in tickets.query.annotations):
        rows = list(query)
    return _page(rows, ordering=ordering, limit=limit)


# The list's page queries, compiled once per shape (core.statements): the kind of party, the filters set,
# the ordering, the page size and whether (and how) it starts after a cursor.
_PAGES = StatementCache(size=512)


def ticket_page(
    party: Party,
    filters: selectors.TicketFilters,
    *,
    ordering: str,
    limit: int,
    cursor: str | None,
    now: datetime.datetime | None = None,
) -> Page:
    """`paginate(selectors.ticket_list(party, filters, …), …)`: one page of the ticket list, from a kept
    statement unless filtering by SLA or searching where the statement follows the words (those queries depend
    on more than their shape: the time, the index's answer). A customer's search is kept: building and
    compiling its query took a third of the page's time."""
    rank_by_priority = ordering.endswith("priority")
    best_match_first = ordering == "relevance"
    search = selectors.parse_search(filters.q) if filters.q else None
    words = None if search is None else selectors.kept_search(party, search)
    if filters.sla or (filters.q and words is None):
        listed = selectors.ticket_list(
            party,
            filters,
            rank_by_priority=rank_by_priority,
            best_match_first=best_match_first,
            now=now,
            search=search,
        )
        return paginate(listed, ordering=ordering, limit=limit, cursor=cursor)
    after = _decode(cursor, ordering) if cursor else None
    party_shape, values = selectors.scope_slots(party)
    if filters.deployment_id:
        values["deployment"] = filters.deployment_id
    if after is not None:
        if after[0] is not None:
            values["after"] = after[0]
        values["after_id"] = after[1]
    if words is not None:
        values["words"] = words[1]
    shape = (
        party_shape,
        filters.status,
        filters.priority,
        filters.category,
        bool(filters.deployment_id),
        ordering,
        limit,
        None if after is None else after[0] is None,
        None if words is None else words[0],
    )

    def build(slots: Mapping[str, Any]) -> QuerySet:
        listed = selectors.ticket_list(
            selectors.party_in_slots(party, slots),
            dataclasses.replace(filters, deployment_id=slots.get("deployment", filters.deployment_id)),
            rank_by_priority=rank_by_priority,
            best_match_first=best_match_first,
            search=None if search is None else selectors.with_tsquery(search, slots["words"]),
        )
        position = None if after is None else (slots.get("after"), slots["after_id"])
        return _page_query(listed, ordering=ordering, limit=limit, after=position)

    return _page(_PAGES.rows(shape, build, values), ordering=ordering, limit=limit)

"""Reads of the chain app: each ticket's anchoring state, for every surface that shows it (REST API,
portal, support console).

A ticket is `failed` while an event's anchoring is failing (retrying with back-off), `pending` while any
event is unanchored, else `anchored`, with the latest anchored transaction. A customer's view counts only
the events they may see, so internal notes leave no trace in it either.

The state is a column of the ticket query itself (`with_chain_state`): one correlated aggregate per row,
evaluated for the rows of the page only, so a page of tickets costs no second round trip.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, JSONField, Min, Q, QuerySet
from django.db.models.expressions import RawSQL

from chain.models import OutboxEntry
from core.statements import StatementCache
from tickets.hooks import CHAIN_COLUMN

# The row column the chain state is read under (registered with tickets as its ticket column).
CHAIN_STATE_FIELD = CHAIN_COLUMN

# The state as every surface presents it (`ChainOutput` of the API): a ticket with no event is pending.
_STATE_OF_ROW_SQL = """(
    SELECT jsonb_build_object(
               'state', CASE WHEN coalesce(bool_or(o.state = 'failed'), false) THEN 'failed'
                             WHEN coalesce(bool_or(o.state <> 'anchored'), true) THEN 'pending'
                             ELSE 'anchored' END,
               'tx_hash', (array_agg(o.tx_hash ORDER BY o.seq DESC) FILTER (WHERE o.state = 'anchored'))[1],
               'height', (array_agg(o.height ORDER BY o.seq DESC) FILTER (WHERE o.state = 'anchored'))[1])
      FROM {outbox} o
     WHERE o.ticket_id = {tickets}.id {visibility}
)"""


@dataclass(frozen=True)
class ChainState:
    state: str  # pending | anchored | failed
    tx_hash: str | None
    height: int | None


def _state_column(queryset: QuerySet[Any, Any], *, sees_internal: bool) -> RawSQL:
    sql = _STATE_OF_ROW_SQL.format(
        outbox=OutboxEntry._meta.db_table,
        tickets=queryset.model._meta.db_table,
        visibility="" if sees_internal else "AND NOT o.is_internal",
    )
    # Plain SQL: on the list's hot path the ORM's compilation of this aggregate cost more than running it.
    return RawSQL(sql, [], output_field=JSONField())  # noqa: S611 - no user input in the SQL


def with_chain_state(queryset: QuerySet[Any, Any], *, sees_internal: bool) -> QuerySet[Any, Any]:
    """Ticket rows (a `.values()` query or model instances) annotated with their chain state."""
    annotated: QuerySet[Any, Any] = queryset.annotate(
        **{CHAIN_STATE_FIELD: _state_column(queryset, sees_internal=sees_internal)}
    )
    return annotated


def chain_state_of(value: dict[str, Any] | None) -> ChainState:
    """The state from a row's annotated value."""
    chain = value or {}
    return ChainState(
        state=chain.get("state") or "pending",
        tx_hash=chain.get("tx_hash") or None,
        height=chain.get("height"),
    )


@dataclass(frozen=True)
class EventReceipt:
    """Where one event stands on the ledger: its outbox row's state and, once anchored, the receipt."""

    seq: int
    state: str
    tx_hash: str
    height: int | None
    anchored_at: datetime.datetime | None
    attempts: int
    last_error: str


# The receipts' query, compiled once (core.statements): the console's ticket page reads it on every view.
_RECEIPTS = StatementCache(size=1)
_RECEIPT_FIELDS = ("seq", "state", "tx_hash", "height", "anchored_at", "attempts", "last_error")


def event_receipts(ticket_id: uuid.UUID | str) -> dict[int, EventReceipt]:
    """seq → receipt for every event of a ticket, in one query (the support console's ticket page)."""

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        rows: QuerySet[Any, Any] = OutboxEntry.objects.filter(ticket_id=slots["ticket"]).values(
            *_RECEIPT_FIELDS
        )
        return rows

    ticket = ticket_id if isinstance(ticket_id, uuid.UUID) else uuid.UUID(str(ticket_id))
    rows = _RECEIPTS.rows("receipts", build, {"ticket": ticket})
    return {row["seq"]: EventReceipt(**row) for row in rows}


@dataclass(frozen=True)
class OutboxBacklog:
    """Events not yet anchored: how many, how many of them are failing, and since when the oldest waits."""

    unanchored: int
    failing: int
    oldest_created_at: datetime.datetime | None

    def lag_seconds(self, now: datetime.datetime) -> float:
        return (
            0.0
            if self.oldest_created_at is None
            else max(0.0, (now - self.oldest_created_at).total_seconds())
        )


def outbox_backlog() -> OutboxBacklog:
    """The outbox's backlog, in one query over the unanchored rows only (their partial index)."""
    totals = OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).aggregate(
        unanchored=Count("id"),
        failing=Count("id", filter=Q(state=OutboxEntry.State.FAILED)),
        oldest=Min("created_at"),
    )
    return OutboxBacklog(totals["unanchored"], totals["failing"], totals["oldest"])

"""The books check after a soak or a fault: nothing lost, duplicated or leaked, everything anchored.

Run in a process that has Django set up on the installation's database (the test process, or the soak's
driver). What a listener may see is read from the database through the same selector the REST API's
`/events` uses; what must never reach it is decided from the raw rows (the ticket's customer and
provider, the event's `is_internal` flag, the internal-note tokens the load writes), not from the code
under test.
"""

from __future__ import annotations

import datetime
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min, Q
from django.utils.dateparse import parse_datetime

from chain.models import OutboxEntry
from core.parties import Party
from notifications.models import PendingEmail, WebhookDelivery
from providers.selectors import party_for_address, party_for_user
from tests.system.load import HmacParty, Listener, SessionParty, WalletParty, internal_tokens_in
from tickets import realtime
from tickets.models import Ticket, TicketEvent

STREAM_GRACE_SECONDS = 1.0


@dataclass
class Books:
    events: int = 0
    tickets: int = 0
    delivered: int = 0  # frames the listeners received (and resynced)
    lost: int = 0
    duplicated: int = 0
    leaked: int = 0
    out_of_order: int = 0
    gaps: int = 0
    unanchored: int = 0
    verify_chain: str = ""
    notifications_pending: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)

    def report(self) -> str:
        lines = [
            f"events {self.events} on {self.tickets} tickets, {self.delivered} frames delivered",
            (
                f"lost {self.lost}, duplicated {self.duplicated}, leaked {self.leaked}, "
                f"out of order {self.out_of_order}, gaps {self.gaps}, unanchored {self.unanchored}, "
                f"notifications pending {self.notifications_pending}"
            ),
            f"verify_chain: {self.verify_chain}",
        ]
        return "\n".join(lines + [f"  ! {p}" for p in self.problems])


def party_of(listener_party: WalletParty | HmacParty | SessionParty) -> Party:
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - needs the app registry

    if isinstance(listener_party, WalletParty):
        return party_for_address(listener_party.address)
    if isinstance(listener_party, HmacParty):
        return party_for_address(listener_party.provider_address)
    party = party_for_user(get_user_model().objects.get(username=listener_party.username))
    assert party is not None
    return party


def behind(listener: Listener) -> int:
    """How many tickets the listener has not yet caught up on: those it may see whose last event (in its
    party's numbering) it has not received, among its ticket or, for a stream, the tickets changed since it
    connected (past the grace)."""
    party = party_of(listener.party)
    if listener.ticket_id:
        tickets = Ticket.objects.filter(pk=listener.ticket_id)
    else:
        since = datetime.datetime.fromtimestamp(listener.connected_at + STREAM_GRACE_SECONDS, tz=datetime.UTC)
        changed = "updated_at__gte" if party.sees_internal else "public_updated_at__gte"
        tickets = Ticket.objects.filter(**{changed: since})
    count = 0
    for ticket in tickets.only(
        "id", "provider_id", "customer_address", "created_by_address", "last_seq", "last_public_seq"
    ):
        if not _may_see(party, ticket):
            continue
        last = ticket.last_seq if party.sees_internal else ticket.last_public_seq
        count += listener.last_seq.get(str(ticket.pk), 0) < last
    return count


def check_books(listeners: Sequence[Listener], *, notifications: bool = True) -> Books:
    books = Books()
    _check_sequences(books)
    _check_anchoring(books)
    for listener in listeners:
        _check_listener(books, listener)
    if notifications:
        _check_notifications(books)
    return books


def _check_sequences(books: Books) -> None:
    """Every ticket's events are numbered 1..n, and its public events 1..p, with no gap."""
    rows = Ticket.objects.annotate(
        n=Count("events"),
        top=Max("events__seq"),
        low=Min("events__seq"),
        public_n=Count("events", filter=Q(events__is_internal=False)),
        public_top=Max("events__public_seq"),
    ).values_list("id", "n", "top", "low", "public_n", "public_top")
    for ticket_id, n, top, low, public_n, public_top in rows:
        books.tickets += 1
        books.events += n
        if n and (low != 1 or top != n):
            books.gaps += 1
            books.problem(f"ticket {ticket_id}: {n} events numbered {low}..{top}")
        if (public_top or 0) != public_n:
            books.gaps += 1
            books.problem(f"ticket {ticket_id}: {public_n} public events, last public seq {public_top}")
    internal_with_public_seq = TicketEvent.objects.filter(is_internal=True, public_seq__isnull=False).count()
    if internal_with_public_seq:
        books.problem(f"{internal_with_public_seq} internal events carry a public seq")


def _check_anchoring(books: Books) -> None:
    """One outbox row per event, every row anchored, and verify_chain finds nothing."""
    without_row = TicketEvent.objects.filter(outbox__isnull=True).count()
    books.unanchored = OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).count() + without_row
    if books.unanchored:
        states = dict(
            OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED)
            .values_list("state")
            .annotate(Count("id"))
        )
        books.problem(f"{books.unanchored} events not anchored (no row: {without_row}, by state: {states})")
    output = io.StringIO()
    try:
        call_command("verify_chain", stdout=output, stderr=output)
        books.verify_chain = output.getvalue().strip().splitlines()[-1] if output.getvalue().strip() else "ok"
    except CommandError as failed:
        books.verify_chain = f"FAILED: {failed}"
        books.problem(f"verify_chain: {failed}: {output.getvalue()[:2000]}")


def _check_listener(books: Books, listener: Listener) -> None:
    party = party_of(listener.party)
    for error in listener.errors:
        books.problem(f"{listener.name}: {error}")
    frames = listener.frames
    books.delivered += len(frames)
    by_ticket: dict[str, list[Any]] = defaultdict(list)
    for frame in frames:
        by_ticket[frame.ticket_id].append(frame)
    tickets = {
        str(t.id): t
        for t in Ticket.objects.filter(pk__in=list(by_ticket) or [None]).only(
            "id", "provider_id", "customer_address", "created_by_address"
        )
    }
    for ticket_id, received in by_ticket.items():
        ticket = tickets.get(ticket_id)
        if ticket is None or not _may_see(party, ticket):
            books.leaked += len(received)
            books.problem(
                f"{listener.name} received {len(received)} events of ticket {ticket_id} it may not see"
            )
            continue
        _check_frames(books, listener, party, ticket, received)
    if listener.ticket_id is not None and listener.ticket_id not in by_ticket:
        _check_frames(books, listener, party, Ticket.objects.get(pk=listener.ticket_id), [])
    if listener.ticket_id is None:
        _check_stream_coverage(books, listener, party, set(by_ticket))


def _may_see(party: Party, ticket: Ticket) -> bool:
    """From the raw rows, not the selectors: support sees all; a provider its own; a customer their own."""
    if party.is_support:
        return True
    if party.is_provider:
        return ticket.provider_id == party.provider_id
    return party.address in {ticket.customer_address, ticket.created_by_address}


def _check_frames(
    books: Books, listener: Listener, party: Party, ticket: Ticket, received: list[Any]
) -> None:
    expected = {m["seq"]: m for m in realtime.replay(party, ticket.pk, since=0, limit=100_000)}
    raw = {  # the party's numbering → is the stored event internal?
        (e.public_seq if not party.sees_internal else e.seq): e.is_internal
        for e in TicketEvent.objects.filter(ticket=ticket).only("seq", "public_seq", "is_internal")
    }
    seen: set[int] = set()
    per_connection: dict[int, int] = {}
    for frame in received:
        if frame.seq in seen:
            books.duplicated += 1
            books.problem(f"{listener.name}: ticket {ticket.pk} seq {frame.seq} delivered twice")
        seen.add(frame.seq)
        if not frame.resynced:
            previous = per_connection.get(frame.connection, 0)
            if frame.seq <= previous:
                books.out_of_order += 1
                books.problem(f"{listener.name}: ticket {ticket.pk} seq {frame.seq} after {previous}")
            per_connection[frame.connection] = frame.seq
        if frame.seq not in expected or raw.get(frame.seq) is None:
            books.leaked += 1
            books.problem(f"{listener.name}: ticket {ticket.pk} seq {frame.seq} is not one it may read")
        elif not party.sees_internal and (raw[frame.seq] or frame.type == "internal_note"):
            books.leaked += 1
            books.problem(f"{listener.name}: an internal event reached a customer")
        elif frame.data != expected[frame.seq]["data"] or frame.type != expected[frame.seq]["type"]:
            books.problem(
                f"{listener.name}: ticket {ticket.pk} seq {frame.seq} differs from the stored event"
            )
        if not party.sees_internal and internal_tokens_in(repr(frame.data)):
            books.leaked += 1
            books.problem(f"{listener.name}: an internal note's text reached a customer")
    # Completeness: a ticket socket must have everything from its first seq on; the stream everything
    # from the first event it received or resynced of that ticket.
    if not expected:
        return
    # Nothing is owed that the system (a log fetch, a sweep) wrote after the listener had stopped.
    owed_until = listener.stopped_at - STREAM_GRACE_SECONDS if listener.stopped_at else float("inf")
    if listener.ticket_id is not None:
        missing = [seq for seq, m in expected.items() if seq not in seen and _timestamp(m) < owed_until]
    else:  # the stream: every event created once it was open (a second's grace for clocks and commits)
        owed_from = listener.connected_at + STREAM_GRACE_SECONDS
        missing = [
            seq for seq, m in expected.items() if seq not in seen and owed_from <= _timestamp(m) < owed_until
        ]
    if missing:
        books.lost += len(missing)
        books.problem(f"{listener.name}: ticket {ticket.pk} missed seq {missing[:10]} (of {len(expected)})")


def _timestamp(message: dict[str, Any]) -> float:
    moment = parse_datetime(message["timestamp"])
    assert moment is not None
    return moment.timestamp()


def _check_stream_coverage(books: Books, listener: Listener, party: Party, heard_of: set[str]) -> None:
    """The stream must hear of every ticket it may see that had an event after it connected."""
    since = datetime.datetime.fromtimestamp(listener.connected_at + STREAM_GRACE_SECONDS, tz=datetime.UTC)
    touched = Ticket.objects.filter(events__created_at__gte=since).distinct()
    if party.is_provider:
        touched = touched.filter(provider_id=party.provider_id)
    elif party.is_customer:
        touched = touched.filter(Q(customer_address=party.address) | Q(created_by_address=party.address))
    for ticket in touched.only("id", "provider_id", "customer_address", "created_by_address"):
        if str(ticket.id) in heard_of:
            continue
        events = TicketEvent.objects.filter(ticket=ticket, created_at__gte=since)
        if listener.stopped_at:
            stopped = listener.stopped_at - STREAM_GRACE_SECONDS
            events = events.filter(created_at__lt=datetime.datetime.fromtimestamp(stopped, tz=datetime.UTC))
        if not party.sees_internal:
            events = events.filter(is_internal=False)
        if events.exists():
            books.lost += events.count()
            books.problem(f"{listener.name} never heard of ticket {ticket.id}")


def _check_notifications(books: Books) -> None:
    """Every webhook delivery and email queued has gone out: none pending, retrying or given up."""
    undelivered = WebhookDelivery.objects.exclude(state=WebhookDelivery.State.DELIVERED).count()
    unsent = PendingEmail.objects.exclude(
        state__in=[PendingEmail.State.SENT, PendingEmail.State.SKIPPED]
    ).count()
    books.notifications_pending = undelivered + unsent
    if books.notifications_pending:
        books.problem(f"{undelivered} webhook deliveries and {unsent} emails not delivered")

"""Real-time delivery of ticket events over the Channels layer.

After a transaction commits, `publish_event` (an event hook) reads who the ticket's parties are and what
the event refers to; then the per-process publisher thread has the event presenter describe it twice —
for provider and support (every event, numbered by `seq`) and for the customer (public events only,
numbered by `public_seq`, so the customer's stream has no gaps that would hint at internal notes) — and
sends both to the groups:

    ticket.<id>.staff        provider and support sockets on one ticket
    ticket.<id>.public       the customer's sockets on one ticket
    updates.support / updates.provider.<id> / updates.customer.<address>   the all-tickets streams

A large batch (more than VE_REALTIME_INLINE_EVENTS events committed together: the SLA sweep's) is
published by a Celery task instead (`tickets.tasks.realtime_publish_task`), which reads the events back
and sends them from whichever worker takes it: its thousands of group sends cost tens of seconds of CPU,
which would otherwise hold the committing process's interpreter while it goes on with its work.

Publishing never blocks or fails the write: the thread has a bounded queue, and when Redis is down the
message is dropped and logged. Nothing is lost: the event is in the database, sockets fill gaps from it,
and a client reconnecting with `?since=` replays what it missed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from accounts import ws_auth
from accounts.ws_auth import SocketCredential
from core.parties import Party, scope_of
from core.tasks import task_send
from tickets import selectors
from tickets.models import TicketEvent
from tickets.presenter import Audience, Related, audience_of, present_event, present_events

logger = logging.getLogger(__name__)

EVENT_MESSAGE_TYPE = "ticket.event"  # the Channels handler name: TicketUpdatesConsumer.ticket_event
TYPING_MESSAGE_TYPE = "ticket.typing"
# Who (provider or support) has a ticket open: sent to the staff group only, never to customers.
PRESENCE_MESSAGE_TYPE = "ticket.presence"
REALTIME_PUBLISH_TASK = "tickets.tasks.realtime_publish_task"
PUBLISH_QUEUE_LIMIT = 10_000
SEND_TIMEOUT_SECONDS = 5
Sends = list[tuple[str, dict[str, Any]]]  # (group, Channels message), in the order they go out


SUPPORT_STREAM = "updates.support"


def ticket_group(ticket_id: object, *, staff: bool) -> str:
    return f"ticket.{ticket_id}.{'staff' if staff else 'public'}"


def provider_stream(provider_id: int) -> str:
    return f"updates.provider.{provider_id}"


def customer_stream(address: str) -> str:
    return f"updates.customer.{address}"


def stream_groups(party: Party) -> list[str]:
    """The all-tickets stream groups a party listens on."""
    scope = scope_of(party)
    if scope.everything:
        return [SUPPORT_STREAM]
    if scope.provider_id is not None:
        return [provider_stream(scope.provider_id)]
    if scope.customer_address:
        return [customer_stream(scope.customer_address)]
    return []


# ---------------------------------------------------------------------------------------------------------
# Messages: the event presenter's description of each event, to each audience.


def replay(
    party: Party,
    ticket_id: object,
    *,
    since: int,
    limit: int = 1000,
    created_from: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Every event of a ticket after `since` (in the party's numbering), as the party may read it (only
    those created at or after `created_from` when given)."""
    ticket = selectors.ticket_get(party, ticket_id)
    events = selectors.events_visible_to(party, ticket, since=since, limit=limit, created_from=created_from)
    return present_events(events, audience_of(party), selectors.event_related(events))


def last_seq_for(party: Party, ticket_id: object) -> int:
    return selectors.last_visible_seq(party, selectors.ticket_get(party, ticket_id))


def socket_refusals(sockets: Sequence[tuple[Party, SocketCredential, str | None]]) -> list[int | None]:
    """For each open socket (its party, its credential, its ticket or None for a stream), the code to
    close it with now, or None: 4401 once the credential is revoked or the session ended, 4403 once the
    party is no longer who it was or can no longer see the ticket. A fixed number of queries per call
    (one per distinct session), whatever the number of sockets."""
    current = ws_auth.credentials_recheck({credential for _, credential, _ in sockets})
    tickets = selectors.tickets_for_visibility({ticket_id for *_, ticket_id in sockets if ticket_id})
    verdicts: list[int | None] = []
    for party, credential, ticket_id in sockets:
        now = current[credential]
        if isinstance(now, int):
            verdicts.append(now)
            continue
        same_party = (now.kind, now.key) == (party.kind, party.key)
        sees_ticket = ticket_id is None or (
            ticket_id in tickets and selectors.ticket_is_visible_to(now, tickets[ticket_id])
        )
        verdicts.append(None if same_party and sees_ticket else ws_auth.CLOSE_FORBIDDEN)
    return verdicts


def _send(group: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return group, {"type": EVENT_MESSAGE_TYPE, "group": group, "payload": payload}


def publish_event(event: TicketEvent) -> None:
    """Event hook: describe the event to each audience and queue the group sends (never raises into the
    write)."""
    publish_events([event])


def publish_events(events: Sequence[TicketEvent]) -> None:
    """`publish_event` for a batch of events (of any tickets): the same messages, two queries in all.

    The queries run here, in the committing thread, on its connection; describing the events and the sends
    run on the publisher thread, so that the batch does not hold up the transaction's caller. The presenter
    reads only the events and what the queries brought. A large batch is handed to a task (see the
    module)."""
    if len(events) > settings.VE_REALTIME_INLINE_EVENTS:
        _publish_by_task(events)
        return
    _submit(events)


def _submit(events: Sequence[TicketEvent]) -> None:
    # Tickets the writer handed over with their events (the SLA sweep's) are not fetched again.
    loaded = {
        event.ticket_id: event.ticket for event in events if TicketEvent.ticket.is_cached(event)
    }.values()
    parties_of = selectors.tickets_parties({event.ticket_id for event in events}, loaded=loaded)
    related = selectors.event_related(events)
    publisher().submit(partial(_event_sends, list(events), parties_of, related))


def _publish_by_task(events: Sequence[TicketEvent]) -> None:
    task_send(REALTIME_PUBLISH_TASK, args=[[event.pk for event in events]])


def publish_stored_events(event_ids: Sequence[int], *, timeout: float = 300) -> int:
    """Publish committed events read back by id (the task of a large batch), and wait until they are sent:
    the worker spends the sends' time in this task, not in the tasks after it. Returns the events."""
    events = selectors.events_by_ids(event_ids)
    if events:
        _submit(events)
        publisher().flush(timeout=timeout)
    return len(events)


def _event_sends(
    events: Sequence[TicketEvent], parties_of: dict[str, selectors.TicketParties], related: Related
) -> Sends:
    sends = []
    for event in events:
        parties = parties_of[str(event.ticket_id)]
        staff = present_event(event, Audience.STAFF, related)
        if staff is not None:
            staff_groups = (
                ticket_group(event.ticket_id, staff=True),
                SUPPORT_STREAM,
                provider_stream(parties.provider_id),
            )
            sends.extend(_send(group, staff) for group in staff_groups)
        public = present_event(event, Audience.PUBLIC, related)
        if public is not None:
            groups = [
                ticket_group(event.ticket_id, staff=False),
                *(customer_stream(address) for address in parties.customer_addresses),
            ]
            sends.extend(_send(group, public) for group in groups)
    return sends


class Publisher:
    """A daemon thread with its own event loop that performs group sends in submission order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Sends | Callable[[], Sends]] = queue.Queue(maxsize=PUBLISH_QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="ticket-event-publisher", daemon=True)
        self._thread.start()

    def submit(self, sends: Sends | Callable[[], Sends]) -> None:
        """Queue group sends, or a function that makes them (run on the thread), in order."""
        try:
            self._queue.put_nowait(sends)
        except queue.Full:
            logger.warning("real-time publish queue full; dropping sends (clients will replay)")

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, timeout: float = 10) -> None:
        """Wait until everything submitted so far was sent (tests, graceful shutdown)."""
        done = threading.Event()
        self.submit([("", {"__flush__": done})])
        done.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            job = self._queue.get()
            try:
                sends = job() if callable(job) else job
            except Exception:  # a presentation bug: these events go unsent, and sockets replay them
                logger.exception("real-time: could not describe events for sending")
                continue
            for group, message in sends:
                if "__flush__" in message:
                    message["__flush__"].set()
                    continue
                try:
                    layer = get_channel_layer()  # looked up each time: the settings may change (tests)
                    loop.run_until_complete(
                        asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_SECONDS)
                    )
                except Exception:  # Redis down or slow: the event is in the database
                    logger.warning(
                        "real-time send to %s failed; clients will replay from the database",
                        group,
                        exc_info=True,
                    )


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    global _publisher  # noqa: PLW0603 - one publisher thread per process, started on first use
    with _publisher_lock:
        if _publisher is None or not _publisher.is_alive():
            _publisher = Publisher()
        return _publisher

"""Real-time delivery of ticket events over the Channels layer.

After a transaction commits, `publish_event` (an event hook) shapes the event twice — for provider and
support (every event, numbered by `seq`) and for the customer (public events only, numbered by
`public_seq`, so the customer's stream has no gaps that would hint at internal notes) — and hands both
to a per-process publisher thread that sends them to the groups:

    ticket.<id>.staff        provider and support sockets on one ticket
    ticket.<id>.public       the customer's sockets on one ticket
    updates.support / updates.provider.<id> / updates.customer.<address>   the all-tickets streams

Publishing never blocks or fails the write: the thread has a bounded queue, and when Redis is down the
message is dropped and logged. Nothing is lost: the event is in the database, sockets fill gaps from it,
and a client reconnecting with `?since=` replays what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

from channels.layers import get_channel_layer

from core.parties import Party, PartyKind
from tickets.models import Attachment, Comment, Ticket, TicketEvent

logger = logging.getLogger(__name__)

EVENT_MESSAGE_TYPE = "ticket.event"  # the Channels handler name: TicketUpdatesConsumer.ticket_event
TYPING_MESSAGE_TYPE = "ticket.typing"
PUBLISH_QUEUE_LIMIT = 10_000
SEND_TIMEOUT_SECONDS = 5


def ticket_group(ticket_id: object, *, staff: bool) -> str:
    return f"ticket.{ticket_id}.{'staff' if staff else 'public'}"


def stream_groups(party: Party) -> list[str]:
    """The all-tickets stream groups a party listens on."""
    if party.kind in (PartyKind.SUPPORT, PartyKind.SYSTEM):
        return ["updates.support"]
    if party.kind is PartyKind.PROVIDER and party.provider_id is not None:
        return [f"updates.provider.{party.provider_id}"]
    if party.kind is PartyKind.CUSTOMER and party.address:
        return [f"updates.customer.{party.address}"]
    return []


# ---------------------------------------------------------------------------------------------------------
# Shaping: the same representation as the REST API gives that recipient.


def _iso(value: Any) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _related(
    events: Iterable[TicketEvent],
) -> tuple[dict[str, Comment], dict[str, Attachment], dict[Any, list]]:
    """Comments and attachments the events refer to, in two queries whatever the number of events."""
    events = list(events)
    comment_ids = {e.data.get("comment_id") for e in events if e.kind == TicketEvent.Kind.NEW_COMMENT}
    attachment_ids = {
        e.data.get("attachment_id")
        for e in events
        if e.kind in (TicketEvent.Kind.ATTACHMENT_ADDED, TicketEvent.Kind.LOGS_FETCHED)
    }
    comments = {str(c.id): c for c in Comment.objects.filter(pk__in=[c for c in comment_ids if c])}
    attachments_by_comment: dict[Any, list] = {}
    attachments = {}
    related = Attachment.objects.filter(pk__in=[a for a in attachment_ids if a]) | Attachment.objects.filter(
        comment_id__in=list(comments)
    )
    for attachment in related:
        attachments[str(attachment.id)] = attachment
        if attachment.comment_id is not None:
            attachments_by_comment.setdefault(attachment.comment_id, []).append(attachment)
    return comments, attachments, attachments_by_comment


def _data(
    event: TicketEvent,
    *,
    for_staff: bool,
    comments: dict[str, Comment],
    attachments: dict[str, Attachment],
    attachments_by_comment: dict[Any, list],
) -> dict[str, Any]:
    from tickets.api.serializers import AttachmentOutput, CommentOutput

    if event.kind == TicketEvent.Kind.NEW_COMMENT and event.data.get("comment_id") in comments:
        comment = comments[event.data["comment_id"]]
        visible = [a for a in attachments_by_comment.get(comment.id, []) if for_staff or not a.is_internal]
        return CommentOutput(comment, context={"attachments_by_comment": {comment.id: visible}}).data
    if event.data.get("attachment_id") in attachments:
        return {**event.data, **AttachmentOutput(attachments[event.data["attachment_id"]]).data}
    data = {**event.data, "actor": event.actor_label, "actor_type": event.actor_kind}
    if not for_staff and event.kind == TicketEvent.Kind.ASSIGNMENT_CHANGE:
        # Customers learn who works their ticket (provider or support), not staff account ids.
        data["from"] = {"kind": data["from"]["kind"]}
        data["to"] = {"kind": data["to"]["kind"]}
    return data


def shape(event: TicketEvent, *, for_staff: bool, related: tuple | None = None) -> dict[str, Any] | None:
    """The message for a provider/support socket (`for_staff`) or a customer's; None if not theirs."""
    if event.is_internal and not for_staff:
        return None
    comments, attachments, by_comment = related if related is not None else _related([event])
    return {
        "type": event.kind,
        "ticket_id": str(event.ticket_id),
        "seq": event.seq if for_staff else event.public_seq,
        "data": _data(
            event,
            for_staff=for_staff,
            comments=comments,
            attachments=attachments,
            attachments_by_comment=by_comment,
        ),
        "timestamp": _iso(event.created_at),
    }


def replay(party: Party, ticket_id: object, *, since: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Every event of a ticket after `since` (in the party's numbering), shaped for the party, oldest first."""
    from tickets import selectors

    ticket = selectors.ticket_get(party, ticket_id)
    visible = selectors.events_visible_to(party, ticket, since=since, limit=limit)
    related = _related(v.event for v in visible)
    messages = [shape(v.event, for_staff=party.sees_internal, related=related) for v in visible]
    return [message for message in messages if message is not None]


def last_seq_for(party: Party, ticket_id: object) -> int:
    from tickets import selectors

    return selectors.last_visible_seq(party, selectors.ticket_get(party, ticket_id))


# ---------------------------------------------------------------------------------------------------------
# Publishing after commit.


def publish_event(event: TicketEvent) -> None:
    """Event hook: shape for both audiences and queue the group sends (never raises into the write)."""
    ticket = Ticket.objects.only("id", "provider_id", "customer_address", "created_by_address").get(
        pk=event.ticket_id
    )
    related = _related([event])
    staff = shape(event, for_staff=True, related=related)
    staff_groups = (
        ticket_group(ticket.id, staff=True),
        "updates.support",
        f"updates.provider.{ticket.provider_id}",
    )
    sends = [
        (group, {"type": EVENT_MESSAGE_TYPE, "group": group, "payload": staff}) for group in staff_groups
    ]
    public = shape(event, for_staff=False, related=related)
    if public is not None:
        customers = {ticket.customer_address, ticket.created_by_address} - {""}
        groups = [
            ticket_group(ticket.id, staff=False),
            *(f"updates.customer.{address}" for address in customers),
        ]
        sends.extend(
            (group, {"type": EVENT_MESSAGE_TYPE, "group": group, "payload": public}) for group in groups
        )
    publisher().submit(sends)


class Publisher:
    """A daemon thread with its own event loop that performs group sends in submission order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[list[tuple[str, dict[str, Any]]]] = queue.Queue(maxsize=PUBLISH_QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="ticket-event-publisher", daemon=True)
        self._thread.start()

    def submit(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            self._queue.put_nowait(sends)
        except queue.Full:
            logger.warning(
                "real-time publish queue full; dropping %d sends (clients will replay)", len(sends)
            )

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
            sends = self._queue.get()
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

"""Composing a ticket-update email: one pending row (a recipient's digest for a ticket) becomes the message.

Who it is for (their address, greeting, the party they read as, their preferences), what they may read —
every event through the event presenter with the recipient's audience, so a customer's email never holds an
internal note — and the headers that thread a ticket's emails and unsubscribe in one click (RFC 8058).
Queueing and sending the pending rows is `notifications.services.email`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from core.formats import parse_iso_timestamp
from core.parties import Party, PartyKind
from core.text import one_line
from notifications import routing
from notifications.inbound.tokens import reply_address
from notifications.models import EmailPreference, PendingEmail
from notifications.selectors import customer_email, preference_of
from providers.models import CustomerIdentity
from providers.selectors import party_for_user
from tickets import humanise
from tickets.models import Comment, Ticket, TicketEvent, format_ticket_number
from tickets.presenter import Audience, audience_of, present_event
from tickets.selectors import comments_visible_to, event_related, ticket_is_visible_to, ticket_rateable
from tickets.services import satisfaction_token

State = PendingEmail.State
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
EXCERPT_COMMENTS = 3


# -- compose ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Addressee:
    """Who a pending email is for: their address, how they are greeted, and the party they read as."""

    email: str
    name: str
    party: Party
    preference: EmailPreference


def _addressee(row: PendingEmail) -> Addressee | None:
    party: Party | None
    if row.customer_id is not None:
        identity = CustomerIdentity.objects.select_related("user").filter(pk=row.customer_id).first()
        if identity is None:
            return None
        user = identity.user
        email = customer_email(identity)
        party = Party(
            kind=PartyKind.CUSTOMER,
            label=user.get_username() if user is not None else identity.address,
            user_id=user.pk if user is not None else None,
            address=identity.address,
        )
        preference = preference_of(customer_id=identity.pk)
    elif row.user_id is not None:
        user = get_user_model().objects.filter(pk=row.user_id, is_active=True).first()
        party = party_for_user(user) if user is not None else None
        if user is None or party is None or party.is_customer:
            return None
        email = user.email
        preference = preference_of(user_id=user.pk)
    else:
        return None  # a row names its user or its customer identity; this one neither
    if not email:
        return None
    return Addressee(email=email, name=party.label, party=party, preference=preference)


def _due(value: object) -> str:
    """A due time of the payload (ISO) as the exact time every page shows on hover."""
    try:
        return humanise.exact_time(parse_iso_timestamp(str(value)))
    except ValueError:
        return "an unknown time"


# Every code in words (`tickets.humanise`, as on the pages): a status, priority, category or SLA target.
_HEADLINES: dict[str, Callable[[dict[str, Any], str], str]] = {
    routing.Kind.TICKET_CREATED: lambda d, actor: (
        f"New {humanise.priority_phrase(d.get('priority'))}-priority "
        f"{humanise.category_phrase(d.get('category'))} ticket opened by {actor}"
    ),
    routing.Kind.NEW_COMMENT: lambda d, actor: (
        f"New {'internal note' if d.get('is_internal') else 'reply'} from {actor}"
    ),
    routing.Kind.STATUS_CHANGE: lambda d, actor: (
        f"Resolved by {actor}"
        if d.get("to") == Ticket.Status.RESOLVED
        else f"Status changed from {humanise.status_phrase(d.get('from'))} to "
        f"{humanise.status_phrase(d.get('to'))} by {actor}"
    ),
    routing.Kind.ASSIGNMENT_CHANGE: lambda _data, actor: f"Escalated to VirtEngine support by {actor}",
    routing.Kind.SLA_BREACHED: lambda d, _actor: (
        f"SLA breached: the {humanise.sla_target_phrase(d.get('target'))} was due {_due(d.get('due_at'))}"
    ),
}


def _headline(item: dict[str, Any]) -> str:
    """One line for an event, from its presented payload only (never from stored data)."""
    describe = _HEADLINES.get(item["type"])
    if describe is None:
        return f"{humanise.event_kind(item['type'])} by {item['actor']}"
    return describe(item["data"], item["actor"])


def _detail(item: dict[str, Any]) -> str:
    data = item["data"]
    if item["type"] == routing.Kind.NEW_COMMENT:
        return str(data.get("content") or "")
    return humanise.reason(data.get("reason"))


def ticket_url(ticket: Ticket, party: Party) -> str:
    base = settings.VE_PUBLIC_BASE_URL.rstrip("/")
    if party.is_support:
        return f"{base}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}"
    return f"{base}/tickets/{format_ticket_number(ticket.number)}/"


def rating_url(ticket: Ticket, party: Party) -> str | None:
    """The single-use link that rates a resolved ticket as this customer (None for anyone else)."""
    if not party.is_customer or not party.address or not ticket_rateable(ticket):
        return None
    token = satisfaction_token(ticket_id=ticket.pk, customer_address=party.address)
    return f"{settings.VE_PUBLIC_BASE_URL.rstrip('/')}{reverse('portal-satisfaction-link', args=[token])}"


def _tells_resolution(events: list[TicketEvent]) -> bool:
    return any(
        event.kind == routing.Kind.STATUS_CHANGE and (event.data or {}).get("to") == Ticket.Status.RESOLVED
        for event in events
    )


def unsubscribe_token(recipient_key: str) -> str:
    return signing.dumps({"r": recipient_key}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(recipient_key: str) -> str:
    path = reverse("notifications-unsubscribe", args=[unsubscribe_token(recipient_key)])
    return f"{settings.VE_PUBLIC_BASE_URL.rstrip('/')}{path}"


def _message_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"


def thread_root_id(ticket: Ticket) -> str:
    """The Message-ID every email about one ticket refers to (`References`), so clients thread them."""
    return f"<ticket.{ticket.pk}@{_message_domain()}>"


def _excerpt(party: Party, ticket: Ticket, until: datetime.datetime) -> list[Comment]:
    comments = comments_visible_to(party, ticket).filter(created_at__lte=until).order_by("-created_at")
    return list(reversed(comments[:EXCERPT_COMMENTS]))


def _reply_to(ticket: Ticket, row: PendingEmail, party: Party, events: list[TicketEvent]) -> list[str] | None:
    """The recipient's own reply address while the ticket takes replies (`notifications.inbound`); a reply
    to an email about an internal note is an internal note (provider and support only)."""
    if ticket.status == Ticket.Status.CLOSED:
        return None
    internal = party.sees_internal and any(
        event.kind == routing.Kind.NEW_COMMENT and event.is_internal for event in events
    )
    key = row.recipient_key
    return [reply_address(ticket_number=ticket.number, recipient_key=key, internal=internal)]


def compose(row: PendingEmail) -> tuple[EmailMultiAlternatives, str] | None:
    """The email for a pending row (and its Message-ID), or None when there is nothing to tell."""
    addressee = _addressee(row)
    if addressee is None or not addressee.preference.email_enabled:
        return None
    ticket = Ticket.objects.filter(pk=row.ticket_id).first()
    if ticket is None or not ticket_is_visible_to(addressee.party, ticket):
        return None
    audience = audience_of(addressee.party)
    events = list(
        TicketEvent.objects.filter(ticket=ticket, seq__gte=row.first_seq, seq__lte=row.last_seq).order_by(
            "seq"
        )
    )
    chosen = [
        event
        for event in events
        if not (row.user_id is not None and event.actor_id == row.user_id)
        and any(getattr(addressee.preference, r.topic) for r in routing.routes_for(event, row.role))
    ]
    related = event_related(chosen)
    items = []
    for event in chosen:
        presented = present_event(event, audience, related)
        if presented is None:
            continue  # the recipient may not read it: not a word of it goes out
        items.append({"headline": _headline(presented), "detail": _detail(presented), "at": event.created_at})
    if not items:
        return None
    root = thread_root_id(ticket)
    first = not PendingEmail.objects.filter(
        ticket=ticket, recipient_key=row.recipient_key, state=State.SENT
    ).exists()
    message_id = root if first else f"<ticket.{ticket.pk}.{row.pk}@{_message_domain()}>"
    number = format_ticket_number(ticket.number)
    # One line whatever is stored: a subject from before the services refused line breaks must not keep
    # every email about its ticket from being sent.
    subject = f"{'' if first else 'Re: '}[{number}] {one_line(ticket.subject)}"
    unsubscribe = unsubscribe_url(row.recipient_key)
    context = {
        "name": addressee.name,
        "ticket": ticket,
        "number": number,
        "items": items,
        "excerpt": _excerpt(addressee.party, ticket, events[-1].created_at) if events else [],
        "ticket_url": ticket_url(ticket, addressee.party),
        "unsubscribe_url": unsubscribe,
        "is_customer": audience is Audience.PUBLIC,
        # The resolution email asks the customer to rate the ticket (tickets.services.satisfaction).
        "rating_url": rating_url(ticket, addressee.party) if _tells_resolution(chosen) else None,
    }
    headers = {
        "Message-ID": message_id,
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-VE-Ticket": number,
    }
    if not first:
        headers["In-Reply-To"] = root
        headers["References"] = root
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("email/ticket_update.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[addressee.email],
        headers=headers,
        reply_to=_reply_to(ticket, row, addressee.party, chosen),
    )
    message.attach_alternative(render_to_string("email/ticket_update.html", context), "text/html")
    return message, message_id

"""Erasure by crypto-shredding: a person's content (the right to be forgotten), or a ticket's (retention).

One mechanism for both (`erase`): for each affected ticket, in short transactions of `BATCH_SIZE` locked
tickets, the rows that hold the content become tombstones that keep ids, sequence numbers, times, kinds and
hashes (`tickets.models.erasure` says what they hold instead); the events that carried it point to the
`ContentErasure` and have their data tombstoned (`privacy.tombstones`); their envelopes' shred keys are
destroyed (`chain.shredding`), so the ciphertext on the ledger can no longer be opened by anyone; the
attachments' data keys are destroyed (the bodies are deleted too, after commit); webhook bodies frozen with
the old content are dropped (an undelivered one is presented again, from the tombstones, when it is sent;
emails are always rendered when sent); and a `content_erased` event is recorded through the normal path
(anchored, broadcast, in the timeline), which also rewrites the tickets' search documents.

Other parties' content on the same tickets stays as it was.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chain.shredding import shred_keys_destroy
from core.errors import Forbidden, ValidationFailed
from core.parties import Party
from notifications.models import InboundMessage, PendingEmail, WebhookDelivery
from privacy.tombstones import TEXT_KINDS, tombstone_data
from providers.models import CustomerIdentity
from tickets.files import storage
from tickets.models import Assignment, Attachment, Comment, ContentErasure, Ticket, TicketEvent
from tickets.models.erasure import ERASED_EMAIL, ERASED_FILENAME, ERASED_NAME, ERASED_TEXT
from tickets.models.satisfaction import SatisfactionRating
from tickets.services import recording

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
REASON_MAX_LENGTH = 2000
Kind = TicketEvent.Kind


@dataclass(frozen=True)
class Person:
    """Whose content: a customer's address, and the portal user signed in as it (if any)."""

    address: str
    user_id: int | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"customer:{self.address}".encode()).hexdigest()


@dataclass
class _Scope:
    """What to erase on a batch of tickets."""

    whole_tickets: set[Any] = field(default_factory=set)  # retention: every content of the ticket
    own_tickets: set[Any] = field(default_factory=set)  # the person opened it: subject, description
    owned_leases: set[Any] = field(default_factory=set)  # on the person's deployment: fetched logs


def person_of(address: str) -> Person:
    identity = CustomerIdentity.objects.filter(address=address).values("user_id").first()
    return Person(address=address, user_id=identity["user_id"] if identity else None)


def _opened_by(person: Person) -> Q:
    opened = Q(created_by_address=person.address)
    return opened | Q(created_by_id=person.user_id) if person.user_id is not None else opened


def _person_tickets(person: Person) -> Q:
    return _opened_by(person) | Q(customer_address=person.address)


def _comments_of(person: Person) -> Q:
    mine = Q(author_address=person.address, author_kind="customer")
    return mine | Q(author_id=person.user_id) if person.user_id is not None else mine


def _uploads_of(person: Person) -> Q:
    mine = Q(uploader_key=f"customer:{person.address}")
    if person.user_id is not None:
        mine |= Q(uploaded_by_id=person.user_id) | Q(uploader_key=f"customer:{person.user_id}")
    return mine


def affected_ticket_ids(person: Person) -> list[Any]:
    """Every ticket holding some of the person's content: theirs, and those they wrote on or uploaded to."""
    ids = set(Ticket.objects.filter(_person_tickets(person)).values_list("pk", flat=True))
    ids |= set(Comment.objects.filter(_comments_of(person)).values_list("ticket_id", flat=True))
    ids |= set(
        Attachment.objects.filter(_uploads_of(person), ticket__isnull=False).values_list(
            "ticket_id", flat=True
        )
    )
    return sorted(ids, key=str)


def person_erase(
    *, actor: Party, address: str, reason: str, reference: str = "", confirm: str = ""
) -> ContentErasure:
    """Erase a customer's personal content everywhere (support only; `confirm` must repeat the address)."""
    if not actor.is_support:
        raise Forbidden("Only VirtEngine support erases a person's content.")
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = ["Say why (the request this answers)."]
    elif len(reason) > REASON_MAX_LENGTH:
        errors["reason"] = [f"At most {REASON_MAX_LENGTH} characters."]
    if (confirm or "").strip() != address:
        errors["confirm"] = ["Type the customer's address again to confirm."]
    if errors:
        raise ValidationFailed("The erasure was not confirmed.", fields=errors)
    person = person_of(address)
    emails = _emails_of(person)  # before the identity loses them: the inbound log is found by them
    erasure = ContentErasure.objects.create(
        basis=ContentErasure.Basis.REQUEST,
        reference=(reference or "").strip()[:200],
        reason=reason,
        subject_digest=person.digest,
        performed_by_label=actor.label,
        performed_by_kind=actor.kind.value,
    )
    ticket_ids = affected_ticket_ids(person)
    for start in range(0, len(ticket_ids), BATCH_SIZE):
        _erase_batch(erasure, actor, ticket_ids[start : start + BATCH_SIZE], person=person)
    _erase_inbound_mail(person, emails)
    _erase_identity(person)
    return _complete(erasure)


def tickets_erase(*, actor: Party, ticket_ids: Sequence[Any], erasure: ContentErasure) -> int:
    """Erase every content of these tickets (retention), in one transaction; how many were erased."""
    return _erase_batch(erasure, actor, list(ticket_ids), person=None)


def _complete(erasure: ContentErasure) -> ContentErasure:
    erasure.completed_at = timezone.now()
    erasure.save(update_fields=["completed_at"])
    return erasure


def _erase_batch(
    erasure: ContentErasure, actor: Party, ticket_ids: list[Any], *, person: Person | None
) -> int:
    with transaction.atomic():
        now = timezone.now()
        tickets = list(
            Ticket.objects.select_for_update(of=("self",)).filter(pk__in=ticket_ids).order_by("pk")
        )
        if not tickets:
            return 0
        ids = [ticket.pk for ticket in tickets]
        scope = _scope(tickets, person)
        comments = Comment.objects.filter(ticket_id__in=ids, erased_at__isnull=True)
        attachments = Attachment.objects.filter(ticket_id__in=ids, erased_at__isnull=True)
        if person is not None:
            comments = comments.filter(_comments_of(person) | Q(ticket_id__in=scope.whole_tickets))
            attachments = attachments.filter(
                _uploads_of(person)
                | Q(ticket_id__in=scope.owned_leases, uploader_kind="system")
                | Q(ticket_id__in=scope.whole_tickets)
            )
        comment_ids = {str(pk) for pk in comments.values_list("pk", flat=True)}
        attachment_rows = list(attachments.values_list("pk", "storage_key"))
        attachment_ids = {str(pk) for pk, _key in attachment_rows}
        events = _events_to_erase(ids, scope, person, comment_ids, attachment_ids)

        comments.update(body=ERASED_TEXT, author_label=ERASED_NAME, erased_at=now)
        Attachment.objects.filter(pk__in=[pk for pk, _key in attachment_rows]).update(
            filename=ERASED_FILENAME, wrapped_key=None, erased_at=now
        )
        content_tickets = scope.own_tickets | scope.whole_tickets
        Ticket.objects.filter(pk__in=content_tickets).update(
            subject=ERASED_TEXT, description=ERASED_TEXT, content_erased_at=now
        )
        _erase_side_rows(ids, scope, person)
        for event in events:
            event.data = tombstone_data(event.kind, event.data)
            event.erasure = erasure
        TicketEvent.objects.bulk_update(events, ["data", "erasure"], batch_size=500)
        if person is not None:
            _erase_names_on_events(ids, person)
        shred_keys_destroy(event.pk for event in events)
        WebhookDelivery.objects.filter(ticket_id__in=ids, body__isnull=False).update(body=None)
        by_ticket: dict[Any, list[int]] = {}
        for event in events:
            by_ticket.setdefault(event.ticket_id, []).append(event.seq)
        # Recording the content_erased events also rewrites these tickets' search documents from the
        # tombstones (the search index is one of the recording's writers), in this transaction.
        _record(erasure, actor, tickets, by_ticket, now)
        erasure.tickets_count += len(tickets)
        erasure.events_count += len(events)
        erasure.attachments_count += len(attachment_rows)
        erasure.save(update_fields=["tickets_count", "events_count", "attachments_count"])
        transaction.on_commit(partial(_delete_bodies, [key for _pk, key in attachment_rows]))
    return len(tickets)


def _scope(tickets: Iterable[Ticket], person: Person | None) -> _Scope:
    scope = _Scope()
    for ticket in tickets:
        if person is None:
            scope.whole_tickets.add(ticket.pk)
            continue
        opened = ticket.created_by_address == person.address or (
            person.user_id is not None and ticket.created_by_id == person.user_id
        )
        # A wallet-created ticket on the person's own lease with no other creator is theirs too.
        if opened or (ticket.customer_address == person.address and not ticket.created_by_address):
            scope.own_tickets.add(ticket.pk)
        if ticket.customer_address == person.address:
            scope.owned_leases.add(ticket.pk)
    return scope


def _customer_events_are_theirs(ticket: Ticket, person: Person) -> bool:
    """Whether the customer acting on this ticket can only be the person: a ticket's customer side is its
    lease's owner and its creator, and here both are the person (or one is and the other absent)."""
    parties = {ticket.customer_address, ticket.created_by_address} - {""}
    return parties == {person.address}


def _events_to_erase(
    ticket_ids: list[Any],
    scope: _Scope,
    person: Person | None,
    comment_ids: set[str],
    attachment_ids: set[str],
) -> list[TicketEvent]:
    candidates = TicketEvent.objects.filter(
        ticket_id__in=ticket_ids, kind__in=TEXT_KINDS, erasure__isnull=True
    ).select_related("ticket")
    return [
        event
        for event in candidates.order_by("ticket_id", "seq")
        if _erases(event, scope, person, comment_ids, attachment_ids)
    ]


def _erases(
    event: TicketEvent, scope: _Scope, person: Person | None, comment_ids: set[str], attachment_ids: set[str]
) -> bool:
    data = event.data or {}
    by_content: dict[str, Callable[[], bool]] = {
        Kind.TICKET_CREATED: lambda: event.ticket_id in scope.own_tickets,
        Kind.TICKET_EDITED: lambda: event.ticket_id in scope.own_tickets,
        Kind.NEW_COMMENT: lambda: str(data.get("comment_id")) in comment_ids,
        Kind.ATTACHMENT_ADDED: lambda: str(data.get("attachment_id")) in attachment_ids,
        Kind.LOGS_FETCHED: lambda: str(data.get("attachment_id")) in attachment_ids,
    }
    if event.ticket_id in scope.whole_tickets:
        return True
    if event.kind in by_content:
        return by_content[event.kind]()
    # A status change, assignment or rating with the person's words in it.
    if person is None or event.actor_kind != "customer":
        return False
    if person.user_id is not None and event.actor_id is not None:
        return event.actor_id == person.user_id
    return _customer_events_are_theirs(event.ticket, person)


def _erase_side_rows(ticket_ids: list[Any], scope: _Scope, person: Person | None) -> None:
    """The rows beside the events that repeat a person's words: ratings' comments, escalation reasons."""
    ratings = SatisfactionRating.objects.filter(ticket_id__in=ticket_ids)
    assignments = Assignment.objects.filter(ticket_id__in=ticket_ids)
    if person is not None:
        ratings = ratings.filter(customer_address=person.address) | ratings.filter(
            ticket_id__in=scope.whole_tickets
        )
        assignments = assignments.filter(
            Q(by_kind="customer", ticket_id__in=scope.own_tickets | scope.owned_leases)
            | Q(ticket_id__in=scope.whole_tickets)
        )
    ratings.update(comment="")
    assignments.update(reason="")
    names = Ticket.objects.filter(pk__in=ticket_ids)
    if person is not None:
        names.filter(_opened_by(person)).update(created_by_label=ERASED_NAME)
    else:
        names.filter(created_by_kind="customer").update(created_by_label=ERASED_NAME)
        Comment.objects.filter(ticket_id__in=ticket_ids, author_kind="customer").update(
            author_label=ERASED_NAME
        )
        TicketEvent.objects.filter(ticket_id__in=ticket_ids, actor_kind="customer").update(
            actor_label=ERASED_NAME
        )


def _erase_names_on_events(ticket_ids: list[Any], person: Person) -> None:
    """The person's name on the events they acted in (the rows stay: kind, time, sequence)."""
    events = TicketEvent.objects.filter(ticket_id__in=ticket_ids, actor_kind="customer")
    if person.user_id is not None:
        events.filter(actor_id=person.user_id).update(actor_label=ERASED_NAME)
    sole = [
        ticket.pk
        for ticket in Ticket.objects.filter(pk__in=ticket_ids).only("customer_address", "created_by_address")
        if _customer_events_are_theirs(ticket, person)
    ]
    events.filter(ticket_id__in=sole).update(actor_label=ERASED_NAME)


def _record(
    erasure: ContentErasure,
    actor: Party,
    tickets: list[Ticket],
    erased_seqs: dict[Any, list[int]],
    at: datetime.datetime,
) -> None:
    data_of = {
        "erasure_id": erasure.pk,
        "basis": erasure.basis,
        "erased_at": at.isoformat().replace("+00:00", "Z"),
        "reference": erasure.reference,
    }
    recording.record_events(
        [
            recording.NewEvent(
                ticket,
                Kind.CONTENT_ERASED,
                actor,
                {**data_of, "events": erased_seqs.get(ticket.pk, [])},
                at=at,
            )
            for ticket in tickets
        ]
    )
    recording.save_tickets(tickets, at=at)


def _emails_of(person: Person) -> set[str]:
    emails = set(CustomerIdentity.objects.filter(address=person.address).values_list("email", flat=True))
    if person.user_id is not None:
        emails |= set(get_user_model().objects.filter(pk=person.user_id).values_list("email", flat=True))
    return {email.lower() for email in emails if email}


def _erase_inbound_mail(person: Person, emails: set[str]) -> None:
    """Replies the person sent by email, stored raw (`notifications.InboundMessage`): the bytes, subject and
    addresses go; one still waiting for a worker is not posted any more."""
    theirs = Q(comment__in=Comment.objects.filter(_comments_of(person)))
    for email in emails:
        theirs |= Q(from_address__iexact=email) | Q(envelope_from__iexact=email)
    with transaction.atomic():
        messages = InboundMessage.objects.filter(theirs)
        messages.filter(state=InboundMessage.State.RECEIVED).update(
            state=InboundMessage.State.REJECTED, reason=InboundMessage.Reason.REFUSED
        )
        messages.update(raw=b"", size=0, subject="", from_address="", envelope_from="", detail="")


def _erase_identity(person: Person) -> None:
    """The person's name and email on their identity and portal account (the account itself stays usable:
    being forgotten is not being barred; what they write from now on is new content)."""
    with transaction.atomic():
        CustomerIdentity.objects.filter(address=person.address).update(email=ERASED_EMAIL)
        # The address emails to them went to, kept on the sent rows (the email log).
        sent_to_them = Q(customer__address=person.address)
        if person.user_id is not None:
            sent_to_them |= Q(user_id=person.user_id)
        PendingEmail.objects.filter(sent_to_them).update(to_address=ERASED_EMAIL)
        if person.user_id is not None:
            user_model = get_user_model()
            user = user_model.objects.filter(pk=person.user_id).first()
            if user is not None:
                user.first_name = user.last_name = ""
                user.email = ERASED_EMAIL
                setattr(user, user_model.USERNAME_FIELD, f"erased-{user.pk}")
                user.save()
        # Uploads never attached to a ticket: rows and bodies go.
        unattached = list(
            Attachment.objects.filter(_uploads_of(person), ticket__isnull=True).values_list(
                "pk", "storage_key"
            )
        )
        Attachment.objects.filter(pk__in=[pk for pk, _key in unattached]).delete()
        transaction.on_commit(partial(_delete_bodies, [key for _pk, key in unattached]))


def _delete_bodies(storage_keys: list[str]) -> None:
    # The data keys are destroyed already (the bodies cannot be read); deleting the ciphertext frees space.
    for storage_key in storage_keys:
        try:
            storage.delete_stored(storage_key)
        except Exception:
            logger.warning("Could not delete the erased attachment body %s", storage_key, exc_info=True)

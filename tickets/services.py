"""Every write to a ticket. One path for each change.

Each service runs in one transaction: it locks the ticket row, checks the actor's role (a ticket the
actor cannot see is NotFound), applies the change, appends a ticket event with the next per-ticket
sequence number, queues the chain outbox row in the same transaction and schedules the after-commit
hooks (real-time broadcast, outbox drain). Nothing else changes a ticket's status or assignee.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from chain.services import outbox_enqueue
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.parties import Party, PartyKind
from providers.models import ProviderMembership
from providers.selectors import deployment_get_for, user_is_support
from tickets import states
from tickets.hooks import schedule_event_hooks
from tickets.models import Assignment, Attachment, Comment, DeploymentLink, SlaPolicy, Ticket, TicketEvent
from tickets.selectors import parse_ticket_id, ticket_is_visible_to

SUBJECT_MAX_LENGTH = 200
TEXT_MAX_LENGTH = 20_000
MAX_ATTACHMENTS_PER_WRITE = 20

ROLE_OF_PARTY = {
    PartyKind.CUSTOMER: states.Role.CUSTOMER,
    PartyKind.PROVIDER: states.Role.PROVIDER,
    PartyKind.SUPPORT: states.Role.SUPPORT,
    PartyKind.SYSTEM: states.Role.SYSTEM,
}
Kind = TicketEvent.Kind


# ---------------------------------------------------------------------------------------------------------------
# Building blocks shared by the services below.


def _lock_ticket(actor: Party, ticket_id: object) -> Ticket:
    """Lock the ticket row for this transaction; NotFound if missing or invisible to the actor."""
    ticket = Ticket.objects.select_for_update(of=("self",)).filter(pk=parse_ticket_id(ticket_id)).first()
    if ticket is None or not ticket_is_visible_to(actor, ticket):
        raise NotFound("Ticket not found.")
    return ticket


def _require_not_closed(ticket: Ticket) -> None:
    if ticket.status == Ticket.Status.CLOSED:
        raise Conflict("The ticket is closed.", code="ticket_closed")


def _record_event(
    ticket: Ticket,
    *,
    kind: str,
    actor: Party,
    data: dict[str, Any],
    is_internal: bool = False,
    at: datetime.datetime | None = None,
) -> TicketEvent:
    """Append the next event of a locked ticket, queue it for the chain, hook it after commit.

    The counters live on the locked ticket row, so concurrent writers queue behind the lock and the
    sequence stays gap-free and unique; a rollback takes the increments with it.
    """
    ticket.last_seq += 1
    public_seq = None
    if not is_internal:
        ticket.last_public_seq += 1
        public_seq = ticket.last_public_seq
    event = TicketEvent.objects.create(
        ticket=ticket,
        seq=ticket.last_seq,
        public_seq=public_seq,
        kind=kind,
        is_internal=is_internal,
        actor_id=actor.user_id,
        actor_kind=actor.kind.value,
        actor_label=actor.label,
        data=data,
        created_at=at or timezone.now(),
    )
    outbox_enqueue(event=event)
    schedule_event_hooks(event)
    return event


def _save(ticket: Ticket, *fields: str, at: datetime.datetime) -> None:
    ticket.updated_at = at
    ticket.save(update_fields=[*fields, "updated_at", "last_seq", "last_public_seq"])


def _clean_text(field: str, value: str | None, *, max_length: int, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"{field} is required.", fields={field: ["This field may not be blank."]})
    if len(text) > max_length:
        raise ValidationFailed(
            f"{field} is too long.",
            fields={field: [f"Ensure this field has no more than {max_length} characters."]},
        )
    return text


def _clean_choice(field: str, value: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if value not in allowed:
        raise ValidationFailed(
            f"{field} is not one of the allowed values.",
            fields={field: [f'"{value}" is not a valid choice; expected one of {", ".join(allowed)}.']},
        )
    return value


def sla_due_times(*, priority: str, start: datetime.datetime) -> tuple[datetime.datetime | None, ...]:
    """First-response and resolution due times for a priority, from its policy (24×7 clock)."""
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is None:
        return None, None
    return (
        start + datetime.timedelta(minutes=policy.first_response_minutes),
        start + datetime.timedelta(minutes=policy.resolution_minutes),
    )


def _attachment_facts(attachment: Attachment) -> dict[str, Any]:
    return {
        "attachment_id": str(attachment.id),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "comment_id": str(attachment.comment_id) if attachment.comment_id else None,
    }


def _attach(
    ticket: Ticket,
    *,
    actor: Party,
    attachment_ids: Sequence[object],
    comment: Comment | None,
    is_internal: bool,
    at: datetime.datetime,
) -> list[Attachment]:
    """Attach the actor's own unreferenced uploads to a locked ticket, one event each."""
    if not attachment_ids:
        return []
    if len(attachment_ids) > MAX_ATTACHMENTS_PER_WRITE:
        raise ValidationFailed(
            "Too many attachments.",
            fields={"attachment_ids": [f"At most {MAX_ATTACHMENTS_PER_WRITE} attachments at a time."]},
        )
    wanted = list(dict.fromkeys(str(attachment_id) for attachment_id in attachment_ids))
    attachments = {
        str(attachment.id): attachment
        for attachment in Attachment.objects.select_for_update().filter(
            pk__in=[valid for valid in map(_uuid_or_none, wanted) if valid],
            ticket__isnull=True,
            uploader_key=actor.key,
        )
    }
    missing = [attachment_id for attachment_id in wanted if _uuid_or_none(attachment_id) not in attachments]
    if missing:
        raise ValidationFailed(
            "Unknown attachment.",
            fields={
                "attachment_ids": [
                    f"{attachment_id} is not an unattached upload of yours." for attachment_id in missing
                ]
            },
        )
    wanted = [_uuid_or_none(attachment_id) for attachment_id in wanted]
    attached = []
    for attachment_id in wanted:
        attachment = attachments[attachment_id]
        attachment.ticket = ticket
        attachment.comment = comment
        attachment.is_internal = attachment.is_internal or is_internal
        attachment.save(update_fields=["ticket", "comment", "is_internal"])
        _record_event(
            ticket,
            kind=Kind.ATTACHMENT_ADDED,
            actor=actor,
            data=_attachment_facts(attachment),
            is_internal=attachment.is_internal,
            at=at,
        )
        attached.append(attachment)
    return attached


def _uuid_or_none(value: str) -> str | None:
    """The canonical form of a UUID string, or None for anything else."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _apply_status(
    ticket: Ticket, *, actor: Party, role: states.Role, target: str, reason: str, at: datetime.datetime
) -> TicketEvent:
    """Move a locked ticket through the state machine (raising Conflict with the allowed targets)."""
    source = ticket.status
    try:
        states.check_transition(source, target, role)
    except states.IllegalTransition as illegal:
        raise Conflict(
            f"A ticket that is {source} cannot be moved to {target} by {role.value}.",
            code="illegal_transition",
            fields={"status": [f"Allowed: {', '.join(s.value for s in illegal.allowed) or 'none'}."]},
            extra={"current": source, "allowed": [s.value for s in illegal.allowed]},
        ) from illegal
    ticket.status = target
    if target == Ticket.Status.RESOLVED:
        ticket.resolved_at = at
    elif target == Ticket.Status.CLOSED:
        ticket.closed_at = at
    elif source == Ticket.Status.RESOLVED:
        ticket.resolved_at = None
    ticket.last_activity_at = at
    return _record_event(
        ticket,
        kind=Kind.STATUS_CHANGE,
        actor=actor,
        data={"from": source, "to": target, "reason": reason},
        at=at,
    )


# ---------------------------------------------------------------------------------------------------------------
# Services.


@transaction.atomic
def ticket_create(
    *,
    actor: Party,
    deployment_id: str,
    subject: str,
    description: str,
    category: str = Ticket.Category.GENERAL,
    priority: str = Ticket.Priority.MEDIUM,
    attachment_ids: Sequence[object] = (),
    metadata: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket about a deployment the actor may see (a customer's own, a provider's lease, any for support)."""
    if actor.is_system:
        raise Forbidden("The system does not open tickets.")
    subject = _clean_text("subject", subject, max_length=SUBJECT_MAX_LENGTH)
    description = _clean_text("description", description, max_length=TEXT_MAX_LENGTH)
    category = _clean_choice("category", category, Ticket.Category.values)
    priority = _clean_choice("priority", priority, Ticket.Priority.values)
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationFailed(
            "metadata must be an object.", fields={"metadata": ["Expected a JSON object."]}
        )
    deployment = deployment_get_for(actor, deployment_id)
    now = timezone.now()
    first_response_due, resolution_due = sla_due_times(priority=priority, start=now)
    ticket = Ticket.objects.create(
        deployment=deployment,
        provider_id=deployment.provider_id,
        customer_address=deployment.owner_address,
        subject=subject,
        description=description,
        category=category,
        priority=priority,
        created_by_id=actor.user_id,
        created_by_kind=actor.kind.value,
        created_by_address=actor.address if actor.is_customer else "",
        created_by_label=actor.label,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        sla_first_response_due=first_response_due,
        sla_resolution_due=resolution_due,
        metadata=metadata or {},
    )
    _record_event(
        ticket,
        kind=Kind.TICKET_CREATED,
        actor=actor,
        data={
            "number": ticket.display_number,
            "deployment_id": deployment.lease_id,
            "category": category,
            "priority": priority,
            "status": ticket.status,
        },
        at=now,
    )
    _attach(ticket, actor=actor, attachment_ids=attachment_ids, comment=None, is_internal=False, at=now)
    _save(ticket, at=now)
    return ticket


@dataclass(frozen=True)
class CommentResult:
    comment: Comment
    attachments: list[Attachment]
    status_event: TicketEvent | None


@transaction.atomic
def comment_add(
    *,
    actor: Party,
    ticket_id: object,
    body: str,
    is_internal: bool = False,
    attachment_ids: Sequence[object] = (),
) -> CommentResult:
    """Add a reply (or, for provider and support, an internal note) to a ticket's thread.

    A customer's reply to a ticket waiting on them or resolved moves it back to in_progress; the first
    public reply by provider or support is the ticket's first response.
    """
    body = _clean_text("content", body, max_length=TEXT_MAX_LENGTH)
    ticket = _lock_ticket(actor, ticket_id)
    if is_internal and not actor.sees_internal:
        raise Forbidden(
            "Customers cannot write internal notes.", fields={"is_internal": ["Not allowed for customers."]}
        )
    _require_not_closed(ticket)
    now = timezone.now()
    comment = Comment.objects.create(
        ticket=ticket,
        author_id=actor.user_id,
        author_kind=actor.kind.value,
        author_address=actor.address if actor.is_customer else "",
        author_label=actor.label,
        body=body,
        is_internal=is_internal,
        created_at=now,
    )
    _record_event(
        ticket,
        kind=Kind.NEW_COMMENT,
        actor=actor,
        data={"comment_id": str(comment.id), "is_internal": is_internal, "author_kind": actor.kind.value},
        is_internal=is_internal,
        at=now,
    )
    attachments = _attach(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=comment, is_internal=is_internal, at=now
    )
    fields = ["last_activity_at"]
    ticket.last_activity_at = now
    status_event = None
    reopened_status = states.AFTER_CUSTOMER_REPLY.get(states.Status(ticket.status))
    if actor.is_customer and reopened_status is not None:
        status_event = _apply_status(
            ticket,
            actor=actor,
            role=states.Role.SYSTEM,
            target=reopened_status,
            reason="customer_reply",
            at=now,
        )
        fields += ["status", "resolved_at"]
    if (
        actor.kind in (PartyKind.PROVIDER, PartyKind.SUPPORT)
        and not is_internal
        and ticket.first_response_at is None
    ):
        ticket.first_response_at = now
        fields.append("first_response_at")
    _save(ticket, *fields, at=now)
    return CommentResult(comment=comment, attachments=attachments, status_event=status_event)


@transaction.atomic
def ticket_transition(*, actor: Party, ticket_id: object, status: str, reason: str = "") -> Ticket:
    """Change a ticket's status through the state machine. Moving to the current status changes nothing."""
    status = _clean_choice("status", status, Ticket.Status.values)
    ticket = _lock_ticket(actor, ticket_id)
    if ticket.status == status:
        return ticket
    now = timezone.now()
    _apply_status(ticket, actor=actor, role=ROLE_OF_PARTY[actor.kind], target=status, reason=reason, at=now)
    _save(ticket, "status", "resolved_at", "closed_at", "last_activity_at", at=now)
    return ticket


@transaction.atomic
def ticket_priority_set(*, actor: Party, ticket_id: object, priority: str) -> Ticket:
    """Change a ticket's priority (any party that sees it, while it is not closed); SLA due times follow."""
    priority = _clean_choice("priority", priority, Ticket.Priority.values)
    ticket = _lock_ticket(actor, ticket_id)
    if ticket.priority == priority:
        return ticket
    _require_not_closed(ticket)
    now = timezone.now()
    previous = ticket.priority
    ticket.priority = priority
    ticket.sla_first_response_due, ticket.sla_resolution_due = sla_due_times(
        priority=priority, start=ticket.created_at
    )
    _record_event(
        ticket, kind=Kind.PRIORITY_CHANGE, actor=actor, data={"from": previous, "to": priority}, at=now
    )
    _save(ticket, "priority", "sla_first_response_due", "sla_resolution_due", at=now)
    return ticket


@transaction.atomic
def ticket_update(
    *, actor: Party, ticket_id: object, status: str | None = None, priority: str | None = None
) -> Ticket:
    """The PATCH of a ticket: priority then status, all or nothing."""
    if status is None and priority is None:
        raise ValidationFailed(
            "Nothing to change.", fields={"non_field_errors": ["Give status and/or priority."]}
        )
    ticket = None
    if priority is not None:
        ticket = ticket_priority_set(actor=actor, ticket_id=ticket_id, priority=priority)
    if status is not None:
        ticket = ticket_transition(actor=actor, ticket_id=ticket_id, status=status)
    assert ticket is not None
    return ticket


def _change_assignment(
    ticket: Ticket,
    *,
    actor: Party,
    to_kind: str,
    to_user_id: int | None,
    reason: str,
    is_escalation: bool,
    at: datetime.datetime,
) -> TicketEvent:
    Assignment.objects.create(
        ticket=ticket,
        from_kind=ticket.assignee_kind,
        from_user_id=ticket.assigned_to_id,
        to_kind=to_kind,
        to_user_id=to_user_id,
        by_kind=actor.kind.value,
        by_label=actor.label,
        reason=reason,
        is_escalation=is_escalation,
        created_at=at,
    )
    names = _usernames({ticket.assigned_to_id, to_user_id})
    data = {
        "from": {
            "kind": ticket.assignee_kind,
            "user_id": ticket.assigned_to_id,
            "name": names.get(ticket.assigned_to_id),
        },
        "to": {"kind": to_kind, "user_id": to_user_id, "name": names.get(to_user_id)},
        "reason": reason,
        "escalation": is_escalation,
    }
    ticket.assignee_kind = to_kind
    ticket.assigned_to_id = to_user_id
    return _record_event(ticket, kind=Kind.ASSIGNMENT_CHANGE, actor=actor, data=data, at=at)


def _usernames(user_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = [user_id for user_id in user_ids if user_id is not None]
    if not wanted:
        return {}
    return dict(get_user_model().objects.filter(pk__in=wanted).values_list("pk", "username"))


@transaction.atomic
def ticket_escalate(*, actor: Party, ticket_id: object, reason: str) -> Ticket:
    """Hand a ticket to the VirtEngine support queue (by customer, provider, support or an SLA breach)."""
    reason = _clean_text("reason", reason, max_length=2_000)
    ticket = _lock_ticket(actor, ticket_id)
    _require_not_closed(ticket)
    if ticket.escalated_at is not None and ticket.assignee_kind == Ticket.AssigneeKind.SUPPORT:
        raise Conflict("The ticket is already escalated to support.", code="already_escalated")
    now = timezone.now()
    _change_assignment(
        ticket,
        actor=actor,
        to_kind=Ticket.AssigneeKind.SUPPORT,
        to_user_id=None,
        reason=reason,
        is_escalation=True,
        at=now,
    )
    ticket.escalated_at = now
    _save(ticket, "assignee_kind", "assigned_to", "escalated_at", at=now)
    return ticket


@transaction.atomic
def ticket_assign(
    *,
    actor: Party,
    ticket_id: object,
    assignee_kind: str,
    assignee_user_id: int | None = None,
    reason: str = "",
) -> Ticket:
    """Support reassigns a ticket: to the provider (its queue or one member) or to support (queue or agent)."""
    assignee_kind = _clean_choice("assignee_kind", assignee_kind, Ticket.AssigneeKind.values)
    ticket = _lock_ticket(actor, ticket_id)
    if not actor.is_support:
        raise Forbidden("Only VirtEngine support assigns tickets.")
    _require_not_closed(ticket)
    if assignee_user_id is not None:
        _require_assignable(ticket, assignee_kind=assignee_kind, user_id=assignee_user_id)
    if ticket.assignee_kind == assignee_kind and ticket.assigned_to_id == assignee_user_id:
        return ticket
    now = timezone.now()
    _change_assignment(
        ticket,
        actor=actor,
        to_kind=assignee_kind,
        to_user_id=assignee_user_id,
        reason=reason.strip(),
        is_escalation=False,
        at=now,
    )
    _save(ticket, "assignee_kind", "assigned_to", at=now)
    return ticket


def _require_assignable(ticket: Ticket, *, assignee_kind: str, user_id: int) -> None:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if assignee_kind == Ticket.AssigneeKind.PROVIDER:
        allowed = ProviderMembership.objects.filter(user_id=user_id, provider_id=ticket.provider_id).exists()
        problem = "is not a member of the ticket's provider"
    else:
        allowed = user is not None and user_is_support(user)
        problem = "is not a support agent"
    if user is None or not allowed:
        raise ValidationFailed(
            "Cannot assign to that user.", fields={"assignee_id": [f"User {user_id} {problem}."]}
        )


@transaction.atomic
def deployment_link(*, actor: Party, ticket_id: object, deployment_id: str) -> DeploymentLink:
    """Relate another deployment of the same customer to the ticket (idempotent)."""
    ticket = _lock_ticket(actor, ticket_id)
    _require_not_closed(ticket)
    deployment = deployment_get_for(actor, deployment_id)
    if deployment.owner_address != ticket.customer_address:
        raise ValidationFailed(
            "Only deployments of the ticket's customer can be linked.",
            fields={"deployment_id": ["This deployment belongs to another owner."]},
        )
    if deployment.pk == ticket.deployment_id:
        raise ValidationFailed(
            "That is the ticket's own deployment.",
            fields={"deployment_id": ["Already the ticket's deployment."]},
        )
    existing = DeploymentLink.objects.filter(ticket=ticket, deployment=deployment).first()
    if existing is not None:
        return existing
    now = timezone.now()
    link = DeploymentLink.objects.create(
        ticket=ticket, deployment=deployment, added_by_label=actor.label, created_at=now
    )
    _record_event(
        ticket, kind=Kind.DEPLOYMENT_LINKED, actor=actor, data={"deployment_id": deployment.lease_id}, at=now
    )
    _save(ticket, at=now)
    return link


@transaction.atomic
def deployment_unlink(*, actor: Party, ticket_id: object, deployment_id: str) -> None:
    ticket = _lock_ticket(actor, ticket_id)
    _require_not_closed(ticket)
    link = DeploymentLink.objects.filter(ticket=ticket, deployment__lease_id=deployment_id).first()
    if link is None:
        raise NotFound(
            "That deployment is not linked to the ticket.", fields={"deployment_id": ["Not linked."]}
        )
    link.delete()
    now = timezone.now()
    _record_event(
        ticket, kind=Kind.DEPLOYMENT_UNLINKED, actor=actor, data={"deployment_id": deployment_id}, at=now
    )
    _save(ticket, at=now)


@transaction.atomic
def attachment_attach(
    *, actor: Party, ticket_id: object, attachment_ids: Sequence[object], is_internal: bool = False
) -> list[Attachment]:
    """Attach uploads to a ticket outside a comment (internal ones: provider and support only)."""
    ticket = _lock_ticket(actor, ticket_id)
    if is_internal and not actor.sees_internal:
        raise Forbidden(
            "Customers cannot add internal attachments.", fields={"is_internal": ["Not allowed."]}
        )
    _require_not_closed(ticket)
    now = timezone.now()
    attachments = _attach(
        ticket, actor=actor, attachment_ids=attachment_ids, comment=None, is_internal=is_internal, at=now
    )
    if attachments:
        ticket.last_activity_at = now
        _save(ticket, "last_activity_at", at=now)
    return attachments


def attachment_upload(*, actor: Party, upload: Any) -> Attachment:
    """Store an upload (already streamed to a temporary file by the upload handler) as an attachment
    that belongs to its uploader until a ticket or comment references it (or it expires)."""
    from tickets import attachment_files

    if actor.is_system:
        raise Forbidden("The system does not upload files through the API.")
    checked = attachment_files.check_upload(upload)
    storage_key = attachment_files.store(upload, content_type=checked.content_type)
    try:
        return Attachment.objects.create(
            uploaded_by_id=actor.user_id,
            uploader_kind=actor.kind.value,
            uploader_key=actor.key,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            storage_key=storage_key,
        )
    except Exception:
        attachment_files.delete_stored(storage_key)  # never leave an orphaned file behind
        raise


LOGS_REQUEST_COOLDOWN_SECONDS = 60


def deployment_logs_request(*, actor: Party, ticket_id: object) -> None:
    """Ask for the deployment's recent logs to be fetched from the provider now (at most once a minute).

    The fetched logs arrive later as an internal attachment with a `logs_fetched` event.
    """
    from django.core.cache import cache

    from providers.tasks import deployment_logs_fetch_task

    ticket = Ticket.objects.filter(pk=parse_ticket_id(ticket_id)).first()
    if ticket is None or not ticket_is_visible_to(actor, ticket):
        raise NotFound("Ticket not found.")
    _require_not_closed(ticket)
    try:
        fresh = cache.add(f"logs-request:{ticket.pk}", 1, timeout=LOGS_REQUEST_COOLDOWN_SECONDS)
    except Exception:  # noqa: BLE001 - without Redis there is no cooldown; fetching again is harmless
        fresh = True
    if not fresh:
        return  # a fetch was requested moments ago; it will bring the same logs
    transaction.on_commit(lambda: deployment_logs_fetch_task.delay(str(ticket.pk)))


def deployment_logs_fetch(*, ticket_id: object) -> Attachment | None:
    """Fetch the deployment's logs from the provider (outside any transaction: it is network I/O), then
    attach them to the ticket as an internal file with a `logs_fetched` event. None if the ticket closed."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from core.parties import SYSTEM
    from providers.provider_api import ProviderRefused, fetch_deployment_logs

    ticket = (
        Ticket.objects.select_related("deployment__provider").filter(pk=parse_ticket_id(ticket_id)).first()
    )
    if ticket is None or ticket.status == Ticket.Status.CLOSED:
        return None
    try:
        text, truncated = fetch_deployment_logs(ticket.deployment)
    except ProviderRefused as refusal:
        text, truncated = f"[logs unavailable: {refusal}]\n", False
    content = text.encode()
    now = timezone.now()
    storage_key = f"attachments/{now:%Y/%m}/{uuid.uuid4().hex}"
    storage_key = storages["attachments"].save(storage_key, ContentFile(content))
    with transaction.atomic():
        locked = _lock_ticket(SYSTEM, ticket.pk)
        attachment = Attachment.objects.create(
            ticket=locked,
            uploader_kind=SYSTEM.kind.value,
            uploader_key=SYSTEM.key,
            filename=f"{locked.display_number}-logs-{now:%Y%m%dT%H%M%SZ}.log",
            content_type="text/plain",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            storage_key=storage_key,
            is_internal=True,
            uploaded_at=now,
        )
        _record_event(
            locked,
            kind=Kind.LOGS_FETCHED,
            actor=SYSTEM,
            data={**_attachment_facts(attachment), "truncated": truncated},
            is_internal=True,
            at=now,
        )
        _save(locked, at=now)
    return attachment

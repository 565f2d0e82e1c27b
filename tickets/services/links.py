"""Related-deployment writes: linking another deployment of the ticket's customer, and unlinking it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.errors import NotFound, ValidationFailed
from core.parties import Party
from providers.selectors import deployment_get_for
from tickets.models import DeploymentLink
from tickets.services import recording


@transaction.atomic
def deployment_link(*, actor: Party, ticket_id: object, deployment_id: str) -> DeploymentLink:
    """Relate another deployment of the same customer to the ticket (idempotent)."""
    ticket = recording.lock_ticket(actor, ticket_id)
    recording.require_not_closed(ticket)
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
    recording.record_event(
        ticket,
        kind=recording.Kind.DEPLOYMENT_LINKED,
        actor=actor,
        data={"deployment_id": deployment.lease_id},
        at=now,
    )
    recording.save_ticket(ticket, at=now)
    return link


@transaction.atomic
def deployment_unlink(*, actor: Party, ticket_id: object, deployment_id: str) -> None:
    ticket = recording.lock_ticket(actor, ticket_id)
    recording.require_not_closed(ticket)
    link = DeploymentLink.objects.filter(ticket=ticket, deployment__lease_id=deployment_id).first()
    if link is None:
        raise NotFound(
            "That deployment is not linked to the ticket.", fields={"deployment_id": ["Not linked."]}
        )
    link.delete()
    now = timezone.now()
    recording.record_event(
        ticket,
        kind=recording.Kind.DEPLOYMENT_UNLINKED,
        actor=actor,
        data={"deployment_id": deployment_id},
        at=now,
    )
    recording.save_ticket(ticket, at=now)

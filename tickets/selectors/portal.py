"""What the portal's pages read besides the API's reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings

from core.errors import NotFound
from core.formats import parse_uuid
from core.parties import Party
from providers.models import Deployment
from providers.selectors import deployments_visible_to
from tickets.models import (
    Attachment,
)
from tickets.selectors.rows import TicketDetail
from tickets.selectors.streams import uuids_of
from tickets.selectors.visibility import ticket_get, tickets_visible_to

# ---------------------------------------------------------------------------------------------------------
# What the portal's pages need besides the API's reads.


def ticket_id_for_reference(party: Party, reference: str) -> uuid.UUID:
    """The id of a visible ticket named the way people name it: `SUP-000123`, `123`, or its UUID."""
    parsed = parse_uuid(reference)
    if parsed is not None:
        return ticket_get(party, parsed).pk
    digits = reference.upper().removeprefix(settings.VE_TICKET_NUMBER_PREFIX).lstrip("0")
    if not digits.isdigit() or len(digits) > 18:
        raise NotFound("Ticket not found.")
    ticket_id = tickets_visible_to(party).filter(number=int(digits)).values_list("pk", flat=True).first()
    if ticket_id is None:
        raise NotFound("Ticket not found.")
    return ticket_id


def linkable_deployments(party: Party, detail: TicketDetail) -> list[Deployment]:
    """Deployments the party could link to this ticket: the ticket's customer's others, visible to it."""
    linked = {link.deployment_id for link in detail.links}
    candidates = deployments_visible_to(party).filter(owner_address=detail.row["customer_address"])
    return [
        deployment
        for deployment in candidates.exclude(lease_id=detail.row["deployment_lease_id"]).order_by(
            "-created_at"
        )[:100]
        if deployment.pk not in linked
    ]


def uploads_of(party: Party, attachment_ids: Iterable[object]) -> list[Attachment]:
    """The party's own uploads not yet attached to a ticket, among these ids (a form shown again)."""
    return list(
        Attachment.objects.filter(
            pk__in=uuids_of(attachment_ids), ticket__isnull=True, uploader_key=party.key
        )
    )

"""What the portal's pages read besides the API's reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from core.errors import NotFound
from core.formats import parse_plain_number, parse_uuid
from core.parties import Party, party_in_slots, scope_slots
from core.statements import StatementCache
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


# The number's lookup, compiled once per kind of party (core.statements): every view of a ticket's page.
_TICKET_BY_NUMBER = StatementCache(size=16)


def ticket_id_for_reference(party: Party, reference: str) -> uuid.UUID:
    """The id of a visible ticket named the way people name it: `SUP-000123`, `123`, or its UUID."""
    parsed = parse_uuid(reference)
    if parsed is not None:
        return ticket_get(party, parsed).pk
    number = parse_plain_number(reference.upper().removeprefix(settings.VE_TICKET_NUMBER_PREFIX).lstrip("0"))
    if not number:
        raise NotFound("Ticket not found.")
    shape, values = scope_slots(party)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        visible = tickets_visible_to(party_in_slots(party, slots))
        return visible.filter(number=slots["number"]).values("pk")[:1]

    rows = _TICKET_BY_NUMBER.rows(shape, build, {**values, "number": number})
    if not rows:
        raise NotFound("Ticket not found.")
    ticket_id: uuid.UUID = rows[0]["pk"]
    return ticket_id


@dataclass(frozen=True, slots=True)
class LinkableDeployment:
    """A deployment offered for linking: what the pickers show and post."""

    lease_id: str
    name: str


LINKABLE_LIMIT = 100
# The linkable deployments' query, compiled once per kind of party (core.statements): the portal's ticket
# page reads it on every view of an open ticket (the console's reads it with its others: `workpage`).
_LINKABLE = StatementCache(size=16)


def linkable_query(party: Party, owner_address: str, lease_id: str) -> QuerySet[Deployment]:
    """The customer's deployments the party sees but the ticket's own, newest first (LINKABLE_LIMIT of them
    are offered, less those already linked: `linkable_of`)."""
    candidates = deployments_visible_to(party).filter(owner_address=owner_address)
    return candidates.exclude(lease_id=lease_id).order_by("-created_at")


def linkable_of(rows: Iterable[Mapping[str, Any]], detail: TicketDetail) -> list[LinkableDeployment]:
    """`linkable_query`'s rows (pk, lease_id, name) not yet linked to the ticket."""
    linked = {link.deployment_id for link in detail.links}
    return [LinkableDeployment(row["lease_id"], row["name"]) for row in rows if row["pk"] not in linked]


def linkable_deployments(party: Party, detail: TicketDetail) -> list[LinkableDeployment]:
    """Deployments the party could link to this ticket: the ticket's customer's others, visible to it."""
    shape, values = scope_slots(party)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        candidates = linkable_query(party_in_slots(party, slots), slots["owner"], slots["lease"])
        return candidates.values("pk", "lease_id", "name")[:LINKABLE_LIMIT]

    rows = _LINKABLE.rows(
        shape,
        build,
        {**values, "owner": detail.row["customer_address"], "lease": detail.row["deployment_lease_id"]},
    )
    return linkable_of(rows, detail)


def uploads_of(party: Party, attachment_ids: Iterable[object]) -> list[Attachment]:
    """The party's own uploads not yet attached to a ticket, among these ids (a form shown again)."""
    return list(
        Attachment.objects.filter(
            pk__in=uuids_of(attachment_ids), ticket__isnull=True, uploader_key=party.key
        )
    )

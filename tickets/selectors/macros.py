"""Macro reads: which macros a party may use (and manage), and the values a macro's placeholders take.

A provider's macros are its members' and machine credentials' only; support's shared macros are support's
only; a customer (or anyone else) has none — not even an empty list's worth of knowledge that they exist.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from core.errors import Forbidden, NotFound
from core.formats import parse_uuid
from core.parties import Party
from core.statements import StatementCache
from providers.models import CustomerIdentity
from tickets.models import Ticket, format_ticket_number
from tickets.models.macros import Macro


def party_uses_macros(party: Party) -> bool:
    """Provider members, provider machines and support use macros; customers and the system do not."""
    return party.is_support or (party.is_provider and party.provider_id is not None)


def require_macro_user(party: Party) -> None:
    if not party_uses_macros(party):
        raise Forbidden("Macros are for providers and VirtEngine support.")


def macros_usable_by(party: Party) -> QuerySet[Macro]:
    """The macros the party may list and apply: a provider's own, or support's shared ones."""
    if party.is_support:
        return Macro.objects.filter(provider__isnull=True)
    if party.is_provider and party.provider_id is not None:
        return Macro.objects.filter(provider_id=party.provider_id)
    return Macro.objects.none()


@dataclass(frozen=True, slots=True)
class MacroName:
    """A macro as a picker offers it."""

    id: uuid.UUID
    name: str
    is_internal: bool


# The pickers' query, compiled once per kind of party (core.statements): the console's work page reads it
# on every view.
_MACRO_NAMES = StatementCache(size=4)


def macro_names(party: Party) -> list[MacroName]:
    """The macros the party may use (`macros_usable_by`), by name: what a picker offers."""
    if party.is_support:
        shape, values = "support", {}
    elif party.is_provider and party.provider_id is not None:
        shape, values = "provider", {"provider": party.provider_id}
    else:
        return []

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        scope = dataclasses.replace(party, provider_id=slots["provider"]) if "provider" in slots else party
        return macros_usable_by(scope).values("pk", "name", "is_internal")

    return macro_names_of(_MACRO_NAMES.rows(shape, build, values))


def macro_names_of(rows: Iterable[Mapping[str, Any]]) -> list[MacroName]:
    """Macros' (pk, name, is_internal) rows as MacroName (a pk read through JSON is its text)."""
    return [
        MacroName(
            row["pk"] if isinstance(row["pk"], uuid.UUID) else uuid.UUID(row["pk"]),
            row["name"],
            row["is_internal"],
        )
        for row in rows
    ]


def macros_manageable_by(party: Party) -> QuerySet[Macro]:
    """The macros the party may change or delete: a provider its own; support every one (the console
    manages the providers' macros too)."""
    if party.is_support:
        return Macro.objects.all()
    return macros_usable_by(party)


def _macro_id(macro_id: object) -> uuid.UUID:
    parsed = parse_uuid(macro_id)
    if parsed is None:
        raise NotFound("Macro not found.")
    return parsed


def macro_get(party: Party, macro_id: object, *, manage: bool = False) -> Macro:
    """One macro the party may use (or, with `manage`, change); NotFound otherwise."""
    scope = macros_manageable_by(party) if manage else macros_usable_by(party)
    macro = scope.select_related("provider").filter(pk=_macro_id(macro_id)).first()
    if macro is None:
        raise NotFound("Macro not found.")
    return macro


def macro_list(party: Party) -> list[Macro]:
    """The macros the party may use, by name (Forbidden for a customer)."""
    require_macro_user(party)
    return list(macros_usable_by(party).select_related("provider"))


@dataclass(frozen=True)
class PlaceholderValues:
    """What a macro's placeholders stand for on one ticket, for one agent."""

    customer_name: str
    ticket_number: str
    ticket_subject: str
    deployment_name: str
    deployment_id: str
    provider_name: str
    agent_name: str

    def as_dict(self) -> dict[str, str]:
        return dict(vars(self))


def customer_name(address: str) -> str:
    """How a reply greets a customer: their name on the portal, else their username, else their address."""
    identity = CustomerIdentity.objects.select_related("user").filter(address=address).first()
    user = identity.user if identity is not None else None
    if user is None:
        return address
    return user.get_full_name() or user.get_username()


def placeholder_values(ticket: Ticket, agent: Party) -> PlaceholderValues:
    """The placeholders' values for a ticket (the caller has it locked or may see it)."""
    deployment = ticket.deployment
    return PlaceholderValues(
        customer_name=customer_name(ticket.customer_address),
        ticket_number=format_ticket_number(ticket.number),
        ticket_subject=ticket.subject,
        deployment_name=deployment.name or deployment.lease_id,
        deployment_id=deployment.lease_id,
        provider_name=ticket.provider.name,
        agent_name=agent.label,
    )

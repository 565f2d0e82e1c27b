"""Who is acting: the party (customer, provider, support or the system) behind a request or task.

Every selector and service takes a `Party`; how a request becomes one (session, wallet signature, HMAC
credential) is the authentication layer's job, so the business rules never look at HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PartyKind(StrEnum):
    CUSTOMER = "customer"
    PROVIDER = "provider"
    SUPPORT = "support"
    SYSTEM = "system"


@dataclass(frozen=True)
class Party:
    """An acting party. `address` is the customer's (or provider's) chain address when known."""

    kind: PartyKind
    label: str
    user_id: int | None = None
    address: str = ""
    provider_id: int | None = None

    @property
    def is_customer(self) -> bool:
        return self.kind is PartyKind.CUSTOMER

    @property
    def is_provider(self) -> bool:
        return self.kind is PartyKind.PROVIDER

    @property
    def is_support(self) -> bool:
        return self.kind is PartyKind.SUPPORT

    @property
    def is_system(self) -> bool:
        return self.kind is PartyKind.SYSTEM

    @property
    def sees_internal(self) -> bool:
        """Internal notes are for the provider and support (and the system's own bookkeeping)."""
        return self.kind is not PartyKind.CUSTOMER

    def snapshot(
        self, prefix: str, fields: tuple[str, ...] = ("id", "kind", "address", "label")
    ) -> dict[str, object]:
        """Who acted, as a row that records it keeps it (`<prefix>_id`, `_kind`, `_address`, `_label`, or
        those of `fields`): a copy, so that the record says what it said even once the person's account
        changes or goes. The address is a customer's (a provider is named by its label)."""
        values: dict[str, object] = {
            "id": self.user_id,
            "kind": self.kind.value,
            "address": self.address if self.is_customer else "",
            "label": self.label,
        }
        return {f"{prefix}_{name}": values[name] for name in fields}

    @property
    def key(self) -> str:
        """A stable identity string, for throttling and logs."""
        if self.kind is PartyKind.PROVIDER:
            return f"provider:{self.provider_id}"
        if self.kind is PartyKind.CUSTOMER:
            return f"customer:{self.address or self.user_id}"
        return f"{self.kind.value}:{self.user_id}"


SYSTEM = Party(kind=PartyKind.SYSTEM, label="system")


@dataclass(frozen=True)
class Scope:
    """What a party may see, as data: everything, one provider's share, one customer's, or nothing.

    The one place that decides it (`scope_of`); ticket, deployment and stream selectors each turn a scope
    into their own filter.
    """

    everything: bool = False
    provider_id: int | None = None
    customer_address: str = ""

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.provider_id is not None or self.customer_address)


def scope_of(party: Party) -> Scope:
    """Support and the system see everything; a provider its own leases' share; a customer their own."""
    if party.kind in (PartyKind.SUPPORT, PartyKind.SYSTEM):
        return Scope(everything=True)
    if party.kind is PartyKind.PROVIDER and party.provider_id is not None:
        return Scope(provider_id=party.provider_id)
    if party.kind is PartyKind.CUSTOMER and party.address:
        return Scope(customer_address=party.address)
    return Scope()


def scope_slots(party: Party) -> tuple[Hashable, dict[str, Any]]:
    """The party as a kept statement (core.statements) sees it: the shape of its scope (which kind of
    party, seeing which kind of share) and the scope's own value as a slot. A ticket or deployment query
    depends on the party only through these (and `Party.kind`), so parties of one shape share a statement."""
    scope = scope_of(party)
    if scope.provider_id is not None:
        return (party.kind, "provider"), {"scope": scope.provider_id}
    if scope.customer_address:
        return (party.kind, "customer"), {"scope": scope.customer_address}
    return (party.kind, "everything" if scope.everything else "nothing"), {}


def party_in_slots(party: Party, values: Mapping[str, Any]) -> Party:
    """`party` with its scope's value taken from `values` (the inverse of `scope_slots`)."""
    if "scope" not in values:
        return party
    scope = scope_of(party)
    if scope.provider_id is not None:
        return dataclasses.replace(party, provider_id=values["scope"])
    return dataclasses.replace(party, address=values["scope"])

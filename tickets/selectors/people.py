"""The people on tickets as staff see them: a customer's name beside their address, and a customer's profile
(who they are, their deployments and providers, their tickets, how the SLA went for them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from core.parties import Party
from providers.models import CustomerIdentity, Deployment
from tickets.models import Ticket, format_ticket_number
from tickets.models.satisfaction import SatisfactionRating
from tickets.selectors.visibility import tickets_visible_to

# The customer's tickets a profile lists (newest first); the counts cover all of them.
PROFILE_TICKETS_LIMIT = 50
OPEN_STATUSES = (Ticket.Status.OPEN, Ticket.Status.IN_PROGRESS, Ticket.Status.WAITING_CUSTOMER)


@dataclass(frozen=True)
class Person:
    address: str
    name: str  # the portal user's full name, else its username; "" for a wallet-only customer
    emails: tuple[str, ...]

    @property
    def label(self) -> str:
        """How a person is shown: their name, else their address."""
        return self.name or self.address


def _person(address: str, email: str | None, user: tuple[str, str] | None = None) -> Person:
    """A customer from their identity's email (None: no identity) and their portal user's (name, email)."""
    if email is None:
        return Person(address=address, name="", emails=())
    name, user_email = user or ("", "")
    emails = (email, user_email)
    return Person(address=address, name=name, emails=tuple(dict.fromkeys(e for e in emails if e)))


def people_by_address(addresses: list[str]) -> dict[str, Person]:
    """The customers behind these addresses, by address (one query, whatever their number)."""
    wanted = list(dict.fromkeys(a for a in addresses if a))
    identities = {
        identity.address: identity
        for identity in CustomerIdentity.objects.filter(address__in=wanted).select_related("user")
    }
    people = {}
    for address in wanted:
        identity = identities.get(address)
        user = identity.user if identity is not None else None
        people[address] = _person(
            address,
            identity.email if identity is not None else None,
            (user.get_full_name() or user.get_username(), user.email) if user is not None else None,
        )
    return people


# What `person_of` reads of a customer's identity and portal user.
PERSON_FIELDS = ("email", "user_id", "user__first_name", "user__last_name", "user__username", "user__email")


def identity_query(address: str) -> QuerySet[CustomerIdentity]:
    """The identity behind one address (none, or one): read with PERSON_FIELDS for `person_of`."""
    return CustomerIdentity.objects.filter(address=address)


def person_of(address: str, row: Mapping[str, Any] | None) -> Person:
    """The customer behind an address from its identity's PERSON_FIELDS (None: no identity), as
    `people_by_address` gives them."""
    if row is None:
        return _person(address, None)
    # The name as `User.get_full_name() or get_username()` gives it.
    full_name = f"{row['user__first_name']} {row['user__last_name']}".strip()
    user = (full_name or row["user__username"], row["user__email"]) if row["user_id"] is not None else None
    return _person(address, row["email"], user)


@dataclass(frozen=True)
class SlaHistory:
    decided_first_response: int
    first_response_met: int
    decided_resolution: int
    resolution_met: int

    @staticmethod
    def _share(met: int, decided: int) -> int | None:
        return round(100 * met / decided) if decided else None

    @property
    def first_response_percent(self) -> int | None:
        return self._share(self.first_response_met, self.decided_first_response)

    @property
    def resolution_percent(self) -> int | None:
        return self._share(self.resolution_met, self.decided_resolution)


@dataclass(frozen=True)
class CustomerProfile:
    person: Person
    deployments: list[Deployment]
    tickets: list[dict[str, Any]]
    open_count: int
    closed_count: int
    total: int
    sla: SlaHistory
    ratings: int
    average_rating: float | None  # 1 to 5, one decimal


def customer_profile(party: Party, address: str) -> CustomerProfile | None:
    """A customer as `party` (support) may see them; None if they have no identity, deployment or ticket."""
    person = people_by_address([address]).get(address)
    tickets = tickets_visible_to(party).filter(customer_address=address)
    deployments = list(
        Deployment.objects.filter(owner_address=address)
        .select_related("provider")
        .order_by("name", "lease_id")
    )
    counts = tickets.aggregate(
        total=Count("pk"),
        open=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
        decided_first=Count("pk", filter=Q(sla_first_response_met__isnull=False)),
        first_met=Count("pk", filter=Q(sla_first_response_met=True)),
        decided_resolution=Count("pk", filter=Q(sla_resolution_met__isnull=False)),
        resolution_met=Count("pk", filter=Q(sla_resolution_met=True)),
    )
    if person is None or (not counts["total"] and not deployments and not person.name):
        return None
    listed = [
        {**row, "reference": format_ticket_number(row["number"])}
        for row in tickets.order_by("-created_at", "-id").values(
            "id", "number", "subject", "status", "priority", "created_at", "provider__name"
        )[:PROFILE_TICKETS_LIMIT]
    ]
    satisfaction = SatisfactionRating.objects.filter(ticket__in=tickets).aggregate(
        count=Count("pk"), average=Avg("rating")
    )
    return CustomerProfile(
        ratings=satisfaction["count"],
        average_rating=round(satisfaction["average"], 1) if satisfaction["average"] is not None else None,
        person=person,
        deployments=deployments,
        tickets=listed,
        open_count=counts["open"],
        closed_count=counts["total"] - counts["open"],
        total=counts["total"],
        sla=SlaHistory(
            decided_first_response=counts["decided_first"],
            first_response_met=counts["first_met"],
            decided_resolution=counts["decided_resolution"],
            resolution_met=counts["resolution_met"],
        ),
    )

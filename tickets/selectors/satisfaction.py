"""Satisfaction reads: a ticket's rating, and ratings per provider and period (the SLA report, the console's
dashboard). A period counts the ratings given in it (`rated_at`), each ticket's latest only (one row each)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from core.parties import Party, scope_of
from tickets.models import Ticket
from tickets.models.satisfaction import RATING_MAX, RATING_MIN, SatisfactionRating
from tickets.selectors.visibility import ticket_get

RATINGS = tuple(range(RATING_MIN, RATING_MAX + 1))


def satisfaction_of(party: Party, ticket_id: object) -> SatisfactionRating | None:
    """The ticket's rating (anyone who sees the ticket may read it: the event is public), or None."""
    ticket = ticket_get(party, ticket_id)
    return SatisfactionRating.objects.filter(ticket=ticket).first()


def satisfaction_of_ticket(ticket_id: uuid.UUID | str) -> SatisfactionRating | None:
    """The rating of a ticket the caller has already read through a selector (a page's context)."""
    return SatisfactionRating.objects.filter(ticket_id=ticket_id).first()


@dataclass(frozen=True)
class Satisfaction:
    """Ratings over a period: how many, their average, and how many of each score (1 to 5)."""

    count: int
    distribution: dict[int, int] = field(default_factory=dict)

    @property
    def average(self) -> float | None:
        if not self.count:
            return None
        return round(sum(score * n for score, n in self.distribution.items()) / self.count, 2)

    @classmethod
    def of(cls, row: dict[str, Any], prefix: str = "") -> Satisfaction:
        distribution = {score: row[f"{prefix}r{score}"] for score in RATINGS}
        return cls(count=sum(distribution.values()), distribution=distribution)

    @classmethod
    def total(cls, parts: list[Satisfaction]) -> Satisfaction:
        distribution = {score: sum(part.distribution.get(score, 0) for part in parts) for score in RATINGS}
        return cls(count=sum(distribution.values()), distribution=distribution)


@dataclass(frozen=True)
class ProviderSatisfaction:
    provider_address: str
    provider_name: str
    ratings: Satisfaction


def _counts(prefix: str = "", condition: Q | None = None) -> dict[str, Count]:
    return {
        f"{prefix}r{score}": Count("id", filter=Q(rating=score) & (condition or Q())) for score in RATINGS
    }


def ratings_visible_to(party: Party) -> QuerySet[SatisfactionRating]:
    """Support sees every provider's ratings, a provider its own; anyone else none."""
    scope = scope_of(party)
    if party.is_customer or scope.nothing:
        return SatisfactionRating.objects.none()
    if scope.everything:
        return SatisfactionRating.objects.all()
    return SatisfactionRating.objects.filter(provider_id=scope.provider_id)


def satisfaction_per_provider(
    party: Party, *, since: datetime.datetime, until: datetime.datetime, provider_id: int | None = None
) -> list[ProviderSatisfaction]:
    """Ratings given in [since, until] per provider the party may report on (one query)."""
    ratings = ratings_visible_to(party).filter(rated_at__gte=since, rated_at__lte=until)
    if provider_id is not None:
        ratings = ratings.filter(provider_id=provider_id)
    rows = (
        ratings.values("provider__address", "provider__name")
        .annotate(**_counts())
        .order_by("provider__name", "provider__address")
    )
    counted: list[dict[str, Any]] = [dict(row) for row in rows]  # keys made from the scores
    return [
        ProviderSatisfaction(
            provider_address=row["provider__address"],
            provider_name=row["provider__name"],
            ratings=Satisfaction.of(row),
        )
        for row in counted
    ]


@dataclass(frozen=True)
class SatisfactionBoardRow:
    """One provider on the console's dashboard: the last 7 and 30 days."""

    name: str
    last_7_days: Satisfaction
    last_30_days: Satisfaction


def satisfaction_dashboard(party: Party, *, now: datetime.datetime) -> list[SatisfactionBoardRow]:
    """Every provider with ratings in the last 30 days, for the console's dashboard (one query)."""
    week, month = now - datetime.timedelta(days=7), now - datetime.timedelta(days=30)
    rows = (
        ratings_visible_to(party)
        .filter(rated_at__gte=month, rated_at__lte=now)
        .values("provider__name", "provider__address")
        .annotate(**_counts("w", Q(rated_at__gte=week)), **_counts("m"))
        .order_by("provider__name", "provider__address")
    )
    counted: list[dict[str, Any]] = [dict(row) for row in rows]
    return [
        SatisfactionBoardRow(
            name=row["provider__name"] or row["provider__address"],
            last_7_days=Satisfaction.of(row, "w"),
            last_30_days=Satisfaction.of(row, "m"),
        )
        for row in counted
    ]


def ticket_rateable(ticket: Ticket) -> bool:
    """Resolved, or closed after a resolution (the rule `tickets.services.satisfaction` applies)."""
    return ticket.status == Ticket.Status.RESOLVED or (
        ticket.status == Ticket.Status.CLOSED and ticket.resolved_at is not None
    )


def satisfaction_panel(party: Party, ticket: dict[str, Any]) -> dict[str, Any]:
    """What a ticket's page shows of satisfaction, from the ticket as the API describes it: the rating (once
    resolved) and whether this party may rate it (its customer)."""
    rateable = ticket["status"] == Ticket.Status.RESOLVED or (
        ticket["status"] == Ticket.Status.CLOSED and ticket.get("resolved_at") is not None
    )
    return {
        "rating": satisfaction_of_ticket(ticket["id"]) if rateable else None,
        "can_rate": rateable and party.is_customer,
    }

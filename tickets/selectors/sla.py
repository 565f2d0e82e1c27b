"""SLA reads: the breached and at-risk filters, the breach totals, the attainment report."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Q
from django.utils import timezone

from core.errors import Forbidden, NotFound
from core.parties import Party, scope_of
from providers.selectors import provider_by_address
from tickets.models import (
    SlaPolicy,
    Ticket,
)
from tickets.selectors.satisfaction import ProviderSatisfaction, Satisfaction, satisfaction_per_provider
from tickets.selectors.visibility import tickets_visible_to


def sla_breached(now: datetime.datetime) -> Q:
    """Tickets that missed a target (met False, a breach recorded, or overdue before the sweep saw it)."""
    return (
        Q(sla_first_response_met=False)
        | Q(sla_resolution_met=False)
        | Q(sla_first_response_breached_at__isnull=False)
        | Q(sla_resolution_breached_at__isnull=False)
        | Q(sla_first_response_met__isnull=True, sla_first_response_due__lte=now)
        | Q(sla_resolution_met__isnull=True, sla_paused_since__isnull=True, sla_resolution_due__lte=now)
        | Q(sla_resolution_met__isnull=True, sla_paused_since__gte=F("sla_resolution_due"))
    )


def sla_at_risk(now: datetime.datetime) -> Q:
    """Tickets with a running target past its warning time (80 %) and none missed yet."""
    warned = Q(
        sla_first_response_met__isnull=True,
        sla_first_response_warn_at__lte=now,
        sla_first_response_due__gt=now,
    ) | Q(
        sla_resolution_met__isnull=True,
        sla_paused_since__isnull=True,
        sla_resolution_warn_at__lte=now,
        sla_resolution_due__gt=now,
    )
    return warned & ~sla_breached(now)


SLA_FILTERS = {"breached": sla_breached, "at_risk": sla_at_risk}


@dataclass(frozen=True)
class SlaBreachTotals:
    """Breaches recorded so far, per target (they only grow), and the open tickets that missed a target."""

    first_response: int
    resolution: int
    open_breached: int


def sla_breach_totals(now: datetime.datetime | None = None) -> SlaBreachTotals:
    """Across every ticket (operations' metrics, not a party's view), in one query."""
    now = now or timezone.now()
    is_open = ~Q(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    totals = Ticket.objects.aggregate(
        first_response=Count("id", filter=Q(sla_first_response_breached_at__isnull=False)),
        resolution=Count("id", filter=Q(sla_resolution_breached_at__isnull=False)),
        open_breached=Count("id", filter=is_open & sla_breached(now)),
    )
    return SlaBreachTotals(totals["first_response"], totals["resolution"], totals["open_breached"])


SLA_REPORT_DEFAULT_DAYS = 30


@dataclass(frozen=True)
class TargetAttainment:
    """How one target fared over a set of tickets: met, missed, still running, and met / decided."""

    met: int
    breached: int
    pending: int

    @property
    def attainment(self) -> float | None:
        decided = self.met + self.breached
        return round(self.met / decided, 4) if decided else None


@dataclass(frozen=True)
class ProviderAttainment:
    provider_address: str
    provider_name: str
    tickets: int
    first_response: TargetAttainment
    resolution: TargetAttainment


def _target_counts(target: str) -> dict[str, Count]:
    met, breached_at, due = f"sla_{target}_met", f"sla_{target}_breached_at", f"sla_{target}_due"
    return {
        f"{target}_met": Count("id", filter=Q(**{met: True})),
        f"{target}_breached": Count(
            "id", filter=Q(**{met: False}) | Q(**{f"{met}__isnull": True, f"{breached_at}__isnull": False})
        ),
        f"{target}_pending": Count(
            "id",
            filter=Q(**{f"{met}__isnull": True, f"{breached_at}__isnull": True, f"{due}__isnull": False}),
        ),
    }


@dataclass(frozen=True)
class SlaReport:
    since: datetime.datetime
    until: datetime.datetime
    providers: list[ProviderAttainment]
    # Ratings given in the period, per provider (those with any): `tickets.selectors.satisfaction`.
    satisfaction: list[ProviderSatisfaction] = field(default_factory=list)

    @property
    def satisfaction_totals(self) -> Satisfaction:
        return Satisfaction.total([provider.ratings for provider in self.satisfaction])

    @property
    def totals(self) -> ProviderAttainment:
        """Every provider of the report together."""

        def total(target: str) -> TargetAttainment:
            rows = [getattr(provider, target) for provider in self.providers]
            return TargetAttainment(
                met=sum(row.met for row in rows),
                breached=sum(row.breached for row in rows),
                pending=sum(row.pending for row in rows),
            )

        return ProviderAttainment(
            provider_address="",
            provider_name="",
            tickets=sum(provider.tickets for provider in self.providers),
            first_response=total("first_response"),
            resolution=total("resolution"),
        )


def sla_report(
    party: Party, *, since: datetime.datetime | None = None, provider_address: str | None = None
) -> SlaReport:
    """SLA attainment per provider over the tickets opened since `since` (default: 30 days ago), in one
    query, and the satisfaction ratings given since then, in another: support sees every provider, a provider
    its own (another provider's is NotFound); customers get none (Forbidden)."""
    until = timezone.now()
    since = since or until - datetime.timedelta(days=SLA_REPORT_DEFAULT_DAYS)
    if party.is_customer or scope_of(party).nothing:
        raise Forbidden("SLA reports are for providers and VirtEngine support.")
    tickets = tickets_visible_to(party).filter(created_at__gte=since)
    provider_id = None
    if provider_address:
        provider = provider_by_address(provider_address)
        if provider is None or not (scope_of(party).everything or provider.pk == party.provider_id):
            raise NotFound("Provider not found.", fields={"provider": ["No such provider, or not yours."]})
        tickets = tickets.filter(provider=provider)
        provider_id = provider.pk
    rows = (
        tickets.values("provider__address", "provider__name")
        .annotate(tickets=Count("id"), **_target_counts("first_response"), **_target_counts("resolution"))
        .order_by("provider__name", "provider__address")
    )
    counted: list[dict[str, Any]] = [dict(row) for row in rows]  # keys made from the targets' names
    providers = [
        ProviderAttainment(
            provider_address=row["provider__address"],
            provider_name=row["provider__name"],
            tickets=row["tickets"],
            **{
                target: TargetAttainment(
                    met=row[f"{target}_met"],
                    breached=row[f"{target}_breached"],
                    pending=row[f"{target}_pending"],
                )
                for target in ("first_response", "resolution")
            },
        )
        for row in counted
    ]
    satisfaction = satisfaction_per_provider(party, since=since, until=until, provider_id=provider_id)
    return SlaReport(since=since, until=until, providers=providers, satisfaction=satisfaction)


def sla_targets() -> dict[str, tuple[int, int]]:
    """priority → (first response minutes, resolution minutes), as the policies say (the create form)."""
    return {
        priority: (first, resolution)
        for priority, first, resolution in SlaPolicy.objects.values_list(
            "priority", "first_response_minutes", "resolution_minutes"
        )
    }

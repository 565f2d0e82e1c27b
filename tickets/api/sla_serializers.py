"""Serializers of the SLA report (`GET /api/v1/sla/report`): attainment per provider of the tickets opened in
a period, and the satisfaction ratings given in it. Outputs build their dicts by hand, as the ticket API's do."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from core.api import TextField
from core.formats import iso_timestamp
from tickets.models.satisfaction import RATING_MAX, RATING_MIN
from tickets.selectors import (
    ProviderAttainment,
    ProviderSatisfaction,
    Satisfaction,
    SlaReport,
    TargetAttainment,
)


class SlaReportQuery(serializers.Serializer):
    server_rules = {"since": "must not be in the future"}

    provider = TextField(max_length=90, required=False, help_text="A provider's address (support: any).")
    since = serializers.DateTimeField(
        required=False,
        help_text="ISO-8601; tickets opened since then (default: the last 30 days). Must not be in the "
        "future: a later instant is a 400 naming `since`.",
    )

    def validate_since(self, since: datetime.datetime) -> datetime.datetime:
        if since > timezone.now():
            raise serializers.ValidationError("Must not be in the future.")
        return since


class TargetAttainmentOutput(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Still running.")
    attainment = serializers.FloatField(allow_null=True, help_text="met / (met + breached); null if none.")

    def to_representation(self, target: TargetAttainment) -> dict[str, Any]:
        return {
            "met": target.met,
            "breached": target.breached,
            "pending": target.pending,
            "attainment": target.attainment,
        }


class AttainmentOutput(serializers.Serializer):
    tickets = serializers.IntegerField(help_text="Tickets opened in the period.")
    first_response = TargetAttainmentOutput()
    resolution = TargetAttainmentOutput()

    def to_representation(self, row: ProviderAttainment) -> dict[str, Any]:
        return {
            "tickets": row.tickets,
            "first_response": TargetAttainmentOutput(row.first_response).data,
            "resolution": TargetAttainmentOutput(row.resolution).data,
        }


class ProviderAttainmentOutput(AttainmentOutput):
    provider = serializers.CharField(help_text="The provider's chain address.")
    provider_name = serializers.CharField()

    def to_representation(self, row: ProviderAttainment) -> dict[str, Any]:
        return {
            "provider": row.provider_address,
            "provider_name": row.provider_name,
            **super().to_representation(row),
        }


class SatisfactionOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="Ratings given in the period (each ticket's latest).")
    average = serializers.FloatField(allow_null=True, help_text="Mean score, 1 to 5; null without ratings.")
    distribution = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=f'How many of each score, keyed "{RATING_MIN}" to "{RATING_MAX}".',
    )

    def to_representation(self, ratings: Satisfaction) -> dict[str, Any]:
        return {
            "count": ratings.count,
            "average": ratings.average,
            "distribution": {
                str(score): ratings.distribution.get(score, 0) for score in range(RATING_MIN, RATING_MAX + 1)
            },
        }


class ProviderSatisfactionOutput(SatisfactionOutput):
    provider = serializers.CharField(help_text="The provider's chain address.")
    provider_name = serializers.CharField()

    def to_representation(self, row: ProviderSatisfaction) -> dict[str, Any]:
        return {
            "provider": row.provider_address,
            "provider_name": row.provider_name,
            **super().to_representation(row.ratings),
        }


class SatisfactionReportOutput(serializers.Serializer):
    providers = ProviderSatisfactionOutput(many=True, help_text="Providers with ratings in the period.")
    totals = SatisfactionOutput(help_text="Every provider in `providers` together.")


class SlaReportOutput(serializers.Serializer):
    """SLA attainment per provider over the tickets opened in a period, and the satisfaction ratings given in
    it (providers: their own only)."""

    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    providers = ProviderAttainmentOutput(many=True)
    totals = AttainmentOutput(help_text="Every provider in `providers` together.")
    satisfaction = SatisfactionReportOutput(
        help_text="Customers' ratings (1 to 5) of resolved tickets given in the period, per provider."
    )

    def to_representation(self, report: SlaReport) -> dict[str, Any]:
        return {
            "since": iso_timestamp(report.since),
            "until": iso_timestamp(report.until),
            "providers": ProviderAttainmentOutput(report.providers, many=True).data,
            "totals": AttainmentOutput(report.totals).data,
            "satisfaction": {
                "providers": ProviderSatisfactionOutput(report.satisfaction, many=True).data,
                "totals": SatisfactionOutput(report.satisfaction_totals).data,
            },
        }

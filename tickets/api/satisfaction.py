"""REST API v1 for satisfaction: a ticket's customer rates it once resolved (`POST /tickets/{id}/satisfaction`,
rating again replaces it), and whoever sees the ticket reads the rating (`GET`). The rules are the service's
(`tickets.services.satisfaction`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_party
from core.api import ErrorOutput, StrictSerializer, TextField, WholeNumberField, error_responses, validated
from core.errors import NotFound
from core.formats import iso_timestamp
from tickets import selectors, services
from tickets.models.satisfaction import (
    RATING_MAX,
    RATING_MIN,
    SATISFACTION_COMMENT_MAX_LENGTH,
    SatisfactionRating,
)


class SatisfactionInput(StrictSerializer):
    rating = WholeNumberField(min_value=RATING_MIN, max_value=RATING_MAX, help_text="1 (poor) to 5 (great).")
    comment = TextField(max_length=SATISFACTION_COMMENT_MAX_LENGTH, required=False, allow_blank=True)


class SatisfactionRatingOutput(serializers.Serializer):
    ticket_id = serializers.UUIDField()
    rating = serializers.IntegerField(min_value=RATING_MIN, max_value=RATING_MAX)
    comment = serializers.CharField()
    rated_at = serializers.DateTimeField()

    def to_representation(self, saved: SatisfactionRating) -> dict[str, Any]:
        return {
            "ticket_id": str(saved.ticket_id),
            "rating": saved.rating,
            "comment": saved.comment,
            "rated_at": iso_timestamp(saved.rated_at),
        }


class TicketSatisfactionView(APIView):
    @extend_schema(
        operation_id="getTicketSatisfaction",
        responses={
            200: SatisfactionRatingOutput,
            404: OpenApiResponse(ErrorOutput, description="No such ticket, or not rated (`not_rated`)."),
            **error_responses(401, 429),
        },
        description="The customer's rating of the ticket, for anyone who may see the ticket.",
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        saved = selectors.satisfaction_of(request_party(request), ticket_id)
        if saved is None:
            raise NotFound("The ticket is not rated.", code="not_rated")
        return Response(SatisfactionRatingOutput(saved).data)

    @extend_schema(
        operation_id="rateTicket",
        request=SatisfactionInput,
        responses={
            201: SatisfactionRatingOutput,
            403: OpenApiResponse(ErrorOutput, description="Only the ticket's customer rates it."),
            409: OpenApiResponse(
                ErrorOutput,
                description="The ticket is not resolved (`not_resolved`; `current` is its status).",
            ),
            **error_responses(400, 401, 404, 429),
        },
        description="Rate a resolved ticket (or one closed after its resolution) as its customer, 1 to 5 with "
        "an optional comment. Rating again replaces the rating; each is a `satisfaction_rated` event.",
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = validated(SatisfactionInput, request.data)
        saved = services.satisfaction_rate(actor=request_party(request), ticket_id=ticket_id, **data)
        return Response(SatisfactionRatingOutput(saved).data, status=status.HTTP_201_CREATED)

"""REST API v1 for macros: a provider's own (its members and machine credentials) or support's shared ones,
listed, created, changed, deleted, and applied to a ticket. Customers have none (403 on the list, 404 on one).

Applying a macro is `POST /tickets/{id}/macros/{macro_id}/apply`: its reply, priority and status through the
ticket services, the same events as each step by hand; the answer is the ticket as after those steps.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_party
from core.api import (
    ErrorOutput,
    FlagField,
    OneLineField,
    StrictSerializer,
    TextField,
    error_responses,
    validated,
)
from core.formats import iso_timestamp
from tickets import selectors, services
from tickets.api import serializers as io
from tickets.models import TEXT_MAX_LENGTH, Ticket
from tickets.models.macros import MACRO_NAME_MAX_LENGTH, Macro
from tickets.presenter import audience_of

_PLACEHOLDERS_HELP = "Placeholders: " + "; ".join(
    f"`{{{name}}}` {meaning.lower()}" for name, meaning in services.PLACEHOLDERS.items()
)


class MacroInput(StrictSerializer):
    server_rules = {
        "status": "a status the macro's owner may move a ticket to (a provider's: in_progress, "
        "waiting_customer or resolved)",
        "body": "only the placeholders listed",
        "name": "unique among the owner's macros",
        "non_field_errors": "a macro does something: a body, a status and/or a priority",
    }

    name = OneLineField(max_length=MACRO_NAME_MAX_LENGTH)
    body = TextField(
        max_length=TEXT_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text=f"The reply; empty: none. {_PLACEHOLDERS_HELP}. `{{{{` and `}}}}` write braces; any other "
        "placeholder is a 400 naming `body`.",
    )
    is_internal = FlagField(required=False, help_text="The reply is an internal note.")
    status = serializers.ChoiceField(
        choices=Ticket.Status.choices,
        required=False,
        allow_blank=True,
        help_text="Move the ticket to this status after the reply; empty: leave it. The owner's role must be "
        "allowed the move (a provider never closes).",
    )
    priority = serializers.ChoiceField(
        choices=Ticket.Priority.choices,
        required=False,
        allow_blank=True,
        help_text="Set this priority; empty: leave it.",
    )


class MacroUpdateInput(MacroInput):
    name = OneLineField(max_length=MACRO_NAME_MAX_LENGTH, required=False)

    needs_one_of = ("name", "body", "is_internal", "status", "priority")  # at least one field to change


class MacroOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    body = serializers.CharField(help_text="The reply, placeholders unfilled.")
    is_internal = serializers.BooleanField()
    status = serializers.CharField(allow_null=True, help_text="The status it sets; null: none.")
    priority = serializers.CharField(allow_null=True, help_text="The priority it sets; null: none.")
    owner = serializers.ChoiceField(choices=["support", "provider"])
    provider = serializers.CharField(
        allow_null=True, help_text="The owning provider's address; null: support's."
    )
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, macro: Macro) -> dict[str, Any]:
        return {
            "id": str(macro.id),
            "name": macro.name,
            "body": macro.body,
            "is_internal": macro.is_internal,
            "status": macro.status or None,
            "priority": macro.priority or None,
            "owner": "support" if macro.provider_id is None else "provider",
            "provider": macro.provider.address if macro.provider_id is not None else None,
            "created_by": macro.created_by_label,
            "created_at": iso_timestamp(macro.created_at),
            "updated_at": iso_timestamp(macro.updated_at),
        }


_FORBIDDEN = OpenApiResponse(ErrorOutput, description="Customers have no macros.")
_NOT_FOUND = OpenApiResponse(ErrorOutput, description="No such macro, or not yours.")


class MacroListCreateView(APIView):
    @extend_schema(
        operation_id="listMacros",
        responses={200: MacroOutput(many=True), 403: _FORBIDDEN, **error_responses(401, 429)},
        description="The caller's macros: a provider's own, or VirtEngine support's shared ones.",
    )
    def get(self, request: Request) -> Response:
        return Response(MacroOutput(selectors.macro_list(request_party(request)), many=True).data)

    @extend_schema(
        operation_id="createMacro",
        request=MacroInput,
        responses={201: MacroOutput, 403: _FORBIDDEN, **error_responses(400, 401, 429)},
        description="A provider's macro for a provider; a shared support macro for VirtEngine support.",
    )
    def post(self, request: Request) -> Response:
        data = validated(MacroInput, request.data)
        macro = services.macro_create(actor=request_party(request), **data)
        return Response(MacroOutput(macro).data, status=status.HTTP_201_CREATED)


class MacroDetailView(APIView):
    @extend_schema(
        operation_id="getMacro",
        responses={200: MacroOutput, 404: _NOT_FOUND, **error_responses(401, 429)},
    )
    def get(self, request: Request, macro_id: str) -> Response:
        return Response(MacroOutput(selectors.macro_get(request_party(request), macro_id)).data)

    @extend_schema(
        operation_id="updateMacro",
        request=MacroUpdateInput,
        responses={200: MacroOutput, 403: _FORBIDDEN, 404: _NOT_FOUND, **error_responses(400, 401, 429)},
    )
    def patch(self, request: Request, macro_id: str) -> Response:
        data = validated(MacroUpdateInput, request.data)
        macro = services.macro_update(actor=request_party(request), macro_id=macro_id, **data)
        return Response(MacroOutput(macro).data)

    @extend_schema(
        operation_id="deleteMacro",
        request=None,
        responses={204: None, 403: _FORBIDDEN, 404: _NOT_FOUND, **error_responses(401, 429)},
    )
    def delete(self, request: Request, macro_id: str) -> Response:
        services.macro_delete(actor=request_party(request), macro_id=macro_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MacroApplyView(APIView):
    @extend_schema(
        operation_id="applyMacro",
        request=None,
        responses={
            200: io.TicketDetailOutput,
            404: OpenApiResponse(ErrorOutput, description="No such ticket or macro, or not yours."),
            409: OpenApiResponse(
                io.TransitionErrorOutput,
                description="A step is refused (a closed ticket, an illegal status move): nothing is applied.",
            ),
            **error_responses(400, 401, 429),
        },
        description="The macro's reply (placeholders filled in), then its priority, then its status, each "
        "through the same service as by hand, all or nothing. Returns the ticket.",
    )
    def post(self, request: Request, ticket_id: str, macro_id: str) -> Response:
        party = request_party(request)
        ticket = services.macro_apply(actor=party, ticket_id=ticket_id, macro_id=macro_id)
        detail = selectors.ticket_detail(party, ticket.pk)
        return Response(io.TicketDetailOutput(detail, context={"audience": audience_of(party)}).data)

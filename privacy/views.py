"""The export's two doors — the REST API (`GET /api/v1/export`) and the portal (`/tickets/export/`), both
streaming `privacy.export.export_stream` — and the shred keys of the ledger envelopes a party may open
(`GET /api/v1/tickets/{id}/envelope-keys`). Nothing else happens here."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_party
from core.api import ErrorOutput, error_responses
from core.parties import Party
from privacy.export import envelope_keys_visible_to, export_filename, export_stream, require_customer
from providers.selectors import party_for_user


class ShredKeyOutput(serializers.Serializer):  # type: ignore[type-arg]
    ledger_key = serializers.CharField(help_text="`ticket:<id>:<seq>`: the anchored tx's idempotency key.")
    seq = serializers.IntegerField(
        help_text="The event's number in the ticket's history as the caller reads it."
    )
    shred_key = serializers.CharField(
        allow_null=True, help_text="Base64, 32 bytes; null: destroyed (erased)."
    )


def _zip_response(party: Party) -> StreamingHttpResponse:
    require_customer(party)
    response = StreamingHttpResponse(export_stream(party), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(party)}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class ExportView(APIView):
    @extend_schema(
        operation_id="exportMyData",
        summary="Everything the customer may see, as one zip",
        description="The right of access: a zip, streamed, holding `export.json` (every ticket the caller may "
        "see with its thread, attachments' descriptions and history, exactly as this API shows them to the "
        "caller) and `files/<id>-<filename>` (each visible attachment). No internal note or internal file. "
        "Customers only.",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            403: OpenApiResponse(ErrorOutput, description="Not a customer: the export is a customer's."),
            **error_responses(401, 429),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        return _zip_response(request_party(request))


@require_GET
def portal_export(request: HttpRequest) -> HttpResponseBase:
    """The portal's "Download my data": signed-in customers only (others: sign in, or 403)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("sign-in"))
    party = party_for_user(request.user)
    if party is None or not party.is_customer:
        raise PermissionDenied("The export is for customers.")
    return _zip_response(party)


class EnvelopeKeysView(APIView):
    @extend_schema(
        operation_id="listEnvelopeShredKeys",
        summary="The shred keys of the ticket's ledger envelopes the caller may open",
        description="Envelopes anchored on the ledger (version 2) open with the reader's X25519 private key "
        "*and* the event's shred key, held only here so that an erasure can destroy it. Each event the caller "
        "may see, by its ledger key (`ticket:<id>:<seq>`), with its shred key (base64), or null once erased.",
        responses={200: ShredKeyOutput(many=True), **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        keys = envelope_keys_visible_to(request_party(request), ticket_id)
        return Response(ShredKeyOutput(keys, many=True).data)

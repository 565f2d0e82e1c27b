"""REST views of the webhook endpoints, their delivery log and redelivery, and email preferences; and the
one-click unsubscribe page. Translate HTTP to services and selectors, and back."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_party
from core.api import error_responses, next_link, validated, validated_query
from core.errors import NotFound
from notifications import selectors, services
from notifications.api import serializers as io
from notifications.selectors import preference_of
from notifications.services.preferences import recipient_of

TAGS = ["webhooks"]


class WebhookEndpointsView(APIView):
    @extend_schema(
        operation_id="listWebhookEndpoints",
        tags=TAGS,
        responses={200: io.WebhookEndpointOutput(many=True), **error_responses(401, 403)},
        description="The calling provider's endpoints.",
    )
    def get(self, request: Request) -> Response:
        endpoints = selectors.webhook_endpoint_list(request_party(request))
        return Response(io.WebhookEndpointOutput(endpoints, many=True).data)

    @extend_schema(
        operation_id="createWebhookEndpoint",
        tags=TAGS,
        request=io.WebhookEndpointCreateInput,
        responses={201: io.WebhookEndpointSecretOutput, **error_responses(400, 401, 403)},
        description="Register an endpoint. The response carries its signing secret: this once only.",
    )
    def post(self, request: Request) -> Response:
        party = request_party(request)
        selectors.require_webhook_manager(party)
        data = validated(io.WebhookEndpointCreateInput, request.data)
        created = services.webhook_endpoint_create(actor=party, **data)
        return Response(io.WebhookEndpointSecretOutput(created).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(APIView):
    @extend_schema(
        operation_id="getWebhookEndpoint",
        tags=TAGS,
        responses={200: io.WebhookEndpointOutput, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(request_party(request), endpoint_id)
        return Response(io.WebhookEndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="updateWebhookEndpoint",
        tags=TAGS,
        request=io.WebhookEndpointUpdateInput,
        responses={200: io.WebhookEndpointOutput, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        party = request_party(request)
        endpoint = selectors.webhook_endpoint_get(party, endpoint_id)
        data = validated(io.WebhookEndpointUpdateInput, request.data)
        endpoint = services.webhook_endpoint_update(actor=party, endpoint_id=endpoint.pk, **data)
        return Response(io.WebhookEndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="deleteWebhookEndpoint",
        tags=TAGS,
        request=None,
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: Request, endpoint_id: str) -> Response:
        party = request_party(request)
        endpoint = selectors.webhook_endpoint_get(party, endpoint_id)
        services.webhook_endpoint_delete(actor=party, endpoint_id=endpoint.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretRotateView(APIView):
    @extend_schema(
        operation_id="rotateWebhookSecret",
        tags=TAGS,
        request=None,
        responses={200: io.WebhookEndpointSecretOutput, **error_responses(401, 403, 404)},
        description="A new secret, shown this once. The old one keeps signing beside it for a grace period "
        "(VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS, a day by default).",
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        party = request_party(request)
        endpoint = selectors.webhook_endpoint_get(party, endpoint_id)
        rotated = services.webhook_endpoint_rotate_secret(actor=party, endpoint_id=endpoint.pk)
        return Response(io.WebhookEndpointSecretOutput(rotated).data)


class WebhookDeliveriesView(APIView):
    @extend_schema(
        operation_id="listWebhookDeliveries",
        tags=TAGS,
        parameters=[io.DeliveryLogQuery],
        responses={200: io.WebhookDeliveryOutput(many=True), **error_responses(400, 401, 403, 404)},
        description='The delivery log, newest first. More pages: the `Link: <…>; rel="next"` header.',
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(request_party(request), endpoint_id)
        query = validated_query(io.DeliveryLogQuery, request)
        deliveries = selectors.webhook_delivery_log(
            endpoint,
            state=query.get("state"),
            since=query.get("since"),
            until=query.get("until"),
            before_id=query.get("cursor"),
            limit=query["limit"],
        )
        response = Response(io.WebhookDeliveryOutput(deliveries, many=True).data)
        if len(deliveries) == query["limit"]:
            response["Link"] = next_link(request, str(deliveries[-1].pk))
        return response


class WebhookDeliveryDetailView(APIView):
    @extend_schema(
        operation_id="getWebhookDelivery",
        tags=TAGS,
        responses={200: io.WebhookDeliveryDetailOutput, **error_responses(401, 403, 404)},
        description="One delivery with its body and every attempt.",
    )
    def get(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(request_party(request), endpoint_id)
        detail = selectors.webhook_delivery_get(endpoint, delivery_id)
        return Response(io.WebhookDeliveryDetailOutput(detail).data)


class WebhookDeliveryRedeliverView(APIView):
    @extend_schema(
        operation_id="redeliverWebhookDelivery",
        tags=TAGS,
        request=None,
        responses={
            202: io.WebhookDeliveryOutput,
            409: OpenApiResponse(description="The endpoint is disabled."),
            **error_responses(401, 403, 404),
        },
        description="Send one delivery again (same id, same body) through the queue.",
    )
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        party = request_party(request)
        endpoint = selectors.webhook_endpoint_get(party, endpoint_id)
        selectors.webhook_delivery_get(endpoint, delivery_id)  # 404 for an id that is not one of its own
        delivery = services.webhook_delivery_redeliver(
            actor=party, endpoint_id=endpoint.pk, delivery_id=delivery_id
        )
        return Response(io.WebhookDeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookRedeliverRangeView(APIView):
    @extend_schema(
        operation_id="redeliverWebhookDeliveries",
        tags=TAGS,
        request=io.RedeliverRangeInput,
        responses={
            202: io.RedeliveredOutput,
            409: OpenApiResponse(description="The endpoint is disabled."),
            **error_responses(400, 401, 403, 404),
        },
        description="Send again the deliveries queued in [since, until): those that gave up, or all.",
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        party = request_party(request)
        endpoint = selectors.webhook_endpoint_get(party, endpoint_id)
        data = validated(io.RedeliverRangeInput, request.data)
        count = services.webhook_deliveries_redeliver(actor=party, endpoint_id=endpoint.pk, **data)
        return Response({"redelivered": count}, status=status.HTTP_202_ACCEPTED)


class EmailPreferenceView(APIView):
    @extend_schema(
        operation_id="getEmailPreferences",
        tags=["notifications"],
        responses={200: io.EmailPreferenceOutput, **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        owner = recipient_of(request_party(request))
        return Response(io.EmailPreferenceOutput(preference_of(**owner)).data)

    @extend_schema(
        operation_id="updateEmailPreferences",
        tags=["notifications"],
        request=io.EmailPreferenceInput,
        responses={200: io.EmailPreferenceOutput, **error_responses(400, 401, 403)},
    )
    def patch(self, request: Request) -> Response:
        data = validated(io.EmailPreferenceInput, request.data)
        preference = services.email_preference_update(actor=request_party(request), **data)
        return Response(io.EmailPreferenceOutput(preference).data)


@method_decorator(csrf_exempt, name="dispatch")  # the signed token is the credential (RFC 8058 one-click)
class UnsubscribeView(View):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes — the
    mail client's one-click `List-Unsubscribe-Post`, or the page's button."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            services.unsubscribe_check(token=token)
        except NotFound:
            return HttpResponse("This unsubscribe link is not valid.", status=404, content_type="text/plain")
        return render(request, "notifications/unsubscribe.html", {"done": False})

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            services.email_unsubscribe(token=token)
        except NotFound:
            return HttpResponse("This unsubscribe link is not valid.", status=404, content_type="text/plain")
        return render(request, "notifications/unsubscribe.html", {"done": True})

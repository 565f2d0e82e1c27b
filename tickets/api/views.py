"""REST API v1 views: translate HTTP to services and selectors, and back. No business rules here."""

from __future__ import annotations

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_party
from core.api import ERRORS, error_responses, next_link, validated, validated_query
from core.errors import ValidationFailed
from core.openapi.schema import text_pattern
from providers.selectors import deployment_list
from tickets import selectors, services
from tickets.api import serializers as io
from tickets.api.pagination import ticket_page
from tickets.files import sniffing
from tickets.files.storage import open_stored
from tickets.files.upload import AttachmentMultiPartParser
from tickets.presenter import audience_of, present_events


def _detail_response(request: Request, ticket_id: object, status_code: int = status.HTTP_200_OK) -> Response:
    party = request_party(request)
    detail = selectors.ticket_detail(party, ticket_id)
    output = io.TicketDetailOutput(detail, context={"audience": audience_of(party)})
    return Response(output.data, status=status_code)


class TicketListCreateView(APIView):
    @extend_schema(
        operation_id="listTickets",
        parameters=[io.TicketListQuery],
        responses={200: io.TicketOutput(many=True), **error_responses(400, 401, 429)},
        description='A JSON array. More pages are announced in a `Link: <…>; rel="next"` header.',
    )
    def get(self, request: Request) -> Response:
        party = request_party(request)
        query = validated_query(io.TicketListQuery, request)
        filters = selectors.TicketFilters(
            status=query.get("status"),
            priority=query.get("priority"),
            category=query.get("category"),
            deployment_id=query.get("deployment_id"),
            q=query.get("q"),
            sla=query.get("sla"),
        )
        now = timezone.now()
        page = ticket_page(
            party,
            filters,
            ordering=query["ordering"],
            limit=query["limit"],
            cursor=query.get("cursor"),
            now=now,
        )
        rows = selectors.rows_with_snippets(party, page.items, filters.q)
        response = Response([io.ticket_output(row, now=now) for row in rows])
        if page.next_cursor:
            response["Link"] = next_link(request, page.next_cursor)
        return response

    @extend_schema(
        operation_id="createTicket",
        request=io.TicketCreateInput,
        responses={201: io.TicketDetailOutput, **error_responses(400, 401, 404, 429)},
    )
    def post(self, request: Request) -> Response:
        data = validated(io.TicketCreateInput, request.data)
        ticket = services.ticket_create(actor=request_party(request), **data)
        return _detail_response(request, ticket.id, status.HTTP_201_CREATED)


class TicketDetailView(APIView):
    @extend_schema(
        operation_id="getTicket", responses={200: io.TicketDetailOutput, **error_responses(401, 404, 429)}
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        return _detail_response(request, ticket_id)

    @extend_schema(
        operation_id="updateTicket",
        request=io.TicketUpdateInput,
        responses={
            200: io.TicketDetailOutput,
            409: OpenApiResponse(
                io.TransitionErrorOutput, description="Illegal transition; `allowed` lists targets."
            ),
            **error_responses(400, 401, 404, 429),
        },
    )
    def patch(self, request: Request, ticket_id: str) -> Response:
        data = validated(io.TicketUpdateInput, request.data)
        services.ticket_update(actor=request_party(request), ticket_id=ticket_id, **data)
        return _detail_response(request, ticket_id)


class TicketCommentsView(APIView):
    @extend_schema(
        operation_id="listTicketComments",
        responses={200: io.CommentOutput(many=True), **error_responses(401, 404)},
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        detail = selectors.ticket_detail(request_party(request), ticket_id)
        context = {"attachments_by_comment": detail.related.attachments_by_comment}
        return Response(io.CommentOutput(detail.comments, many=True, context=context).data)

    @extend_schema(
        operation_id="addTicketComment",
        request=io.CommentCreateInput,
        responses={
            201: io.CommentOutput,
            409: OpenApiResponse(io.ErrorOutput, description="The ticket is closed."),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = validated(io.CommentCreateInput, request.data)
        result = services.comment_add(
            actor=request_party(request),
            ticket_id=ticket_id,
            body=data["body"],
            is_internal=data["is_internal"],
            attachment_ids=data["attachment_ids"],
        )
        context = {"attachments_by_comment": {result.comment.id: result.attachments}}
        return Response(
            io.CommentOutput(result.comment, context=context).data, status=status.HTTP_201_CREATED
        )


class TicketEventsView(APIView):
    @extend_schema(
        operation_id="listTicketEvents",
        parameters=[io.EventsQuery],
        responses={200: io.EventOutput(many=True), **error_responses(400, 401, 404)},
        description="The ticket's history after `since`, in the caller's own sequence numbering.",
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        party = request_party(request)
        query = validated_query(io.EventsQuery, request)
        ticket = selectors.ticket_get(party, ticket_id)
        events = selectors.events_visible_to(party, ticket, since=query["since"], limit=query["limit"])
        presented = present_events(events, audience_of(party), selectors.event_related(events))
        return Response(io.EventOutput(presented, many=True).data)


class TicketEscalateView(APIView):
    @extend_schema(
        operation_id="escalateTicket",
        request=io.EscalateInput,
        responses={200: io.TicketDetailOutput, 409: ERRORS[400], **error_responses(400, 401, 404)},
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = validated(io.EscalateInput, request.data)
        services.ticket_escalate(
            actor=request_party(request),
            ticket_id=ticket_id,
            reason=data["reason"],
            customer_message=data["customer_message"],
        )
        return _detail_response(request, ticket_id)


class TicketAssignView(APIView):
    @extend_schema(
        operation_id="assignTicket",
        request=io.AssignInput,
        responses={200: io.TicketDetailOutput, **error_responses(400, 401, 403, 404)},
        description="VirtEngine support only.",
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = validated(io.AssignInput, request.data)
        services.ticket_assign(
            actor=request_party(request),
            ticket_id=ticket_id,
            assignee_kind=data["assignee_type"],
            assignee_user_id=data.get("assignee_id"),
            reason=data["reason"],
            customer_message=data["customer_message"],
        )
        return _detail_response(request, ticket_id)


class TicketLinksView(APIView):
    @extend_schema(
        operation_id="linkDeployment",
        request=io.DeploymentLinkInput,
        responses={201: io.DeploymentLinkOutput, **error_responses(400, 401, 404)},
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        data = validated(io.DeploymentLinkInput, request.data)
        link = services.deployment_link(
            actor=request_party(request), ticket_id=ticket_id, deployment_id=data["deployment_id"]
        )
        body = {
            "deployment_id": link.deployment.lease_id,
            "deployment_name": link.deployment.name,
            "linked_at": io.DeploymentLinkOutput().fields["linked_at"].to_representation(link.created_at),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="unlinkDeployment",
        parameters=[
            OpenApiParameter(
                "deployment_id",
                OpenApiTypes.STR,
                required=True,
                pattern=text_pattern(blank=False, one_line=False),
                description="The lease to unlink (not blank).",
            )
        ],
        request=None,
        responses={204: None, **error_responses(400, 401, 404)},
    )
    def delete(self, request: Request, ticket_id: str) -> Response:
        deployment_id = request.query_params.get("deployment_id") or (
            request.data.get("deployment_id") if isinstance(request.data, dict) else None
        )
        data = validated(io.DeploymentLinkInput, {"deployment_id": deployment_id} if deployment_id else {})
        services.deployment_unlink(
            actor=request_party(request), ticket_id=ticket_id, deployment_id=data["deployment_id"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TicketLogsView(APIView):
    @extend_schema(
        operation_id="requestDeploymentLogs",
        request=None,
        responses={
            202: inline_serializer("LogsRequested", {"status": serializers.CharField()}),
            **error_responses(401, 403, 404, 429),
        },
        description="Fetch the deployment's recent logs from the provider now; they arrive as an internal attachment.",
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        services.deployment_logs_request(actor=request_party(request), ticket_id=ticket_id)
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


class AttachmentUploadView(APIView):
    parser_classes = [AttachmentMultiPartParser]

    @extend_schema(
        operation_id="uploadAttachment",
        request={
            "multipart/form-data": OpenApiRequest(
                io.AttachmentUploadInput,
                encoding={"file": {"contentType": ", ".join(sniffing.ACCEPTED_TYPES)}},
            )
        },
        description=f"One file, as multipart field `file`. Accepted: {sniffing.ACCEPTED_DESCRIPTION}; the "
        "type is decided on the bytes, never the declared Content-Type (anything else is a 415 listing "
        "`accepted`).",
        responses={
            201: io.AttachmentOutput,
            413: OpenApiResponse(io.ErrorOutput, description="File larger than the limit."),
            415: OpenApiResponse(io.ErrorOutput, description="File type not accepted."),
            **error_responses(400, 401, 429),
        },
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is None:
            raise ValidationFailed("No file.", fields={"file": ["Send the file as multipart field `file`."]})
        attachment = services.attachment_upload(actor=request_party(request), upload=upload)
        return Response(io.AttachmentOutput(attachment).data, status=status.HTTP_201_CREATED)


class AttachmentDownloadView(APIView):
    @extend_schema(
        operation_id="downloadAttachment",
        responses={
            **{(200, media_type): OpenApiTypes.BINARY for media_type in sniffing.ACCEPTED_TYPES},
            **error_responses(401, 404),
        },
        description="The file's bytes, as the type they were sniffed as on upload (one of those listed).",
    )
    def get(self, request: Request, attachment_id: str) -> FileResponse:
        attachment = selectors.attachment_get_for_download(request_party(request), attachment_id)
        response = FileResponse(
            open_stored(attachment.storage_key),
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type,
        )
        response["Content-Length"] = str(attachment.size)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response


class SlaReportView(APIView):
    @extend_schema(
        operation_id="getSlaReport",
        parameters=[io.SlaReportQuery],
        responses={
            200: io.SlaReportOutput,
            403: OpenApiResponse(io.ErrorOutput, description="Customers get no SLA report."),
            404: OpenApiResponse(io.ErrorOutput, description="No such provider, or not yours."),
            **error_responses(400, 401, 429),
        },
        description="SLA attainment per provider over the tickets opened since `since`: providers see their "
        "own, VirtEngine support every provider (or the one named by `provider`).",
    )
    def get(self, request: Request) -> Response:
        query = validated_query(io.SlaReportQuery, request)
        report = selectors.sla_report(
            request_party(request), since=query.get("since"), provider_address=query.get("provider")
        )
        return Response(io.SlaReportOutput(report).data)


class DeploymentListView(APIView):
    @extend_schema(
        operation_id="listMyDeployments",
        responses={200: io.DeploymentOutput(many=True), **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        return Response(io.DeploymentOutput(deployment_list(request_party(request)), many=True).data)

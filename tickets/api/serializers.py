"""Input and output serializers of the ticket API.

Inputs validate shape and types (the business rules are the services'). Outputs declare their fields
for the OpenAPI schema but build their dicts by hand in `to_representation`: the list endpoint renders
up to 200 tickets per request and DRF's per-field machinery would dominate its cost.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from core.api import (
    ErrorOutput,
    FlagField,
    IdField,
    OneLineField,
    QueryIntegerField,
    StrictSerializer,
    TextField,
)
from core.errors import ValidationFailed
from core.formats import iso_timestamp
from providers.models import LEASE_ID_MAX_LENGTH, Deployment
from tickets import sla

# The SLA report's and the reassignments' serializers are modules of their own; the views read them from
# here, like every other.
from tickets.api.assignment_serializers import DB_INTEGER_MAX, AssignInput, EscalateInput  # noqa: F401
from tickets.api.sla_serializers import SlaReportOutput, SlaReportQuery  # noqa: F401
from tickets.hooks import CHAIN_COLUMN
from tickets.models import (
    MAX_ATTACHMENTS_PER_WRITE,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_KEYS,
    SUBJECT_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    Attachment,
    Comment,
    DeploymentLink,
    Ticket,
    format_ticket_number,
)
from tickets.presenter import present_attachment, present_comment, present_events
from tickets.selectors import (
    SEARCH_RANK,
    SEARCH_SNIPPET,
    VISIBLE_UPDATED_AT,
    TicketDetail,
    parse_search,
    ticket_sla,
)
from tickets.selectors.search import PHRASE_RELEVANCE_CANDIDATES, RELEVANCE_CANDIDATES
from tickets.services.recording import clean_metadata

# --------------------------------------------------------------------------------------------------------------
# Inputs (lengths are the services' bounds, from tickets.models, so the schema documents them)

SEARCH_MAX_LENGTH = 200


class MetadataField(serializers.DictField):
    """The ticket's free-form object, bounded as the service bounds it (`recording.clean_metadata`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            f"A JSON object: at most {METADATA_MAX_BYTES} bytes, {METADATA_MAX_DEPTH} levels deep and "
            f"{METADATA_MAX_KEYS} keys in all.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return clean_metadata(super().to_internal_value(data))
        except ValidationFailed as refused:
            raise serializers.ValidationError(refused.fields.get("metadata") or refused.message) from refused


METADATA_RULE = (
    "its size, depth and key count as above, and no NUL or lone surrogate in its keys or strings (a 400 "
    "naming `metadata` or the path inside it)"
)


ATTACHMENTS_RULE = "Each must be a file you uploaded (POST /attachments) and not yet attached."


class TicketCreateInput(StrictSerializer):
    server_rules = {"metadata": METADATA_RULE, "attachment_ids": ATTACHMENTS_RULE}

    deployment_id = TextField(max_length=LEASE_ID_MAX_LENGTH)
    subject = OneLineField(max_length=SUBJECT_MAX_LENGTH)
    description = TextField(max_length=TEXT_MAX_LENGTH)
    category = serializers.ChoiceField(choices=Ticket.Category.choices, default=Ticket.Category.GENERAL)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, default=Ticket.Priority.MEDIUM)
    attachment_ids = serializers.ListField(
        child=IdField(), default=list, max_length=MAX_ATTACHMENTS_PER_WRITE
    )
    metadata = MetadataField(required=False, default=dict)


class TicketUpdateInput(StrictSerializer):
    needs_one_of = ("status", "priority")

    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)


class CommentCreateInput(StrictSerializer):
    """VirtEngine clients send `message`; our portal sends `content`: at least one of them, not blank. Both
    are accepted when they hold the same text, as a client that sends back the comment it read does (the
    output carries both); two different texts are refused."""

    needs_one_of = ("content", "message")
    server_rules = {
        "message": "When both `content` and `message` are given, they must be the same text.",
        "attachment_ids": ATTACHMENTS_RULE,
    }

    content = TextField(max_length=TEXT_MAX_LENGTH, required=False)
    message = TextField(max_length=TEXT_MAX_LENGTH, required=False)
    attachment_ids = serializers.ListField(
        child=IdField(), default=list, max_length=MAX_ATTACHMENTS_PER_WRITE
    )
    is_internal = FlagField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)  # at least one of the two, neither blank (the fields refuse it)
        content, message = attrs.get("content"), attrs.get("message")
        if content is not None and message is not None and content != message:
            raise serializers.ValidationError({"message": ["Differs from content; send one of them."]})
        attrs["body"] = content if content is not None else message
        return attrs


class DeploymentLinkInput(StrictSerializer):
    deployment_id = TextField(max_length=LEASE_ID_MAX_LENGTH)


class AttachmentUploadInput(serializers.Serializer):
    """The upload's one multipart field; its type is decided on its bytes."""

    server_rules = {
        "file": "its bytes must be one of the accepted types (sniffed, whatever the part's Content-Type "
        "says): anything else is a 415 naming `file`; an empty file is a 400"
    }

    file = serializers.FileField()


class EventsQuery(serializers.Serializer):
    since = QueryIntegerField(min_value=0, default=0, max_value=DB_INTEGER_MAX)
    limit = QueryIntegerField(min_value=1, max_value=1000, default=500)


class TicketListQuery(serializers.Serializer):
    server_rules = {"ordering": "`relevance` sorts search results: it needs `q`."}
    validation_is_pure = True  # a function of the query string alone (core.api.validated_query remembers it)

    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, required=False)
    category = serializers.ChoiceField(choices=Ticket.Category.choices, required=False)
    deployment_id = TextField(max_length=LEASE_ID_MAX_LENGTH, required=False)
    q = TextField(
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        trim_whitespace=True,
        help_text=(
            'Search, as on the web: words (any form, accents ignored), `"an exact phrase"`, `-excluded`, '
            "`or` between two terms; the last word also matches as a prefix. A ticket number in any form "
            "(`SUP-000123`, `#123`, `123`). Matches subject, description, the comments and file names the "
            "caller may read, lease IDs and deployment names, and for providers and support the customer's "
            "address, name and email and the provider's name. Each result's `match` shows where."
        ),
    )
    sla = serializers.ChoiceField(
        choices=["breached", "at_risk"],
        required=False,
        help_text="`breached`: a target was missed; `at_risk`: a running target is past 80 % and none missed.",
    )
    ordering = serializers.ChoiceField(
        choices=[
            "created_at",
            "-created_at",
            "updated_at",
            "-updated_at",
            "priority",
            "-priority",
            "sla_due",
            "-sla_due",
            "relevance",
        ],
        required=False,
        help_text=(
            "`sla_due`: by the earliest due time of a running SLA target (tickets with none come last). "
            f"`relevance`: best match first (with `q` only), among the {RELEVANCE_CANDIDATES} most recently "
            f"updated matches ({PHRASE_RELEVANCE_CANDIDATES} when `q` holds a phrase of words); any other "
            "ordering lists them all. Default: `relevance` with `q`, else `-created_at`."
        ),
    )
    limit = QueryIntegerField(min_value=1, max_value=200, default=50)
    cursor = TextField(
        max_length=500,
        required=False,
        help_text='Opaque: the value in the `Link: <…>; rel="next"` header\'s URL, passed back unchanged '
        "with the same filters and ordering. Any other value is a 400 naming `cursor` (start again "
        "without it).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        searching = parse_search(attrs.get("q")) is not None
        if attrs.get("ordering") == "relevance" and not searching:
            raise serializers.ValidationError(
                {"ordering": ["`relevance` sorts search results: give `q` too."]}
            )
        attrs.setdefault("ordering", "relevance" if searching else "-created_at")
        return attrs


# --------------------------------------------------------------------------------------------------------------
# Outputs


class AttachmentOutput(serializers.Serializer):
    id = serializers.UUIDField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField(
        allow_null=True, help_text="Where to download it; null once its content was erased."
    )
    uploaded_at = serializers.DateTimeField()
    sha256 = serializers.CharField()
    ticket_id = serializers.UUIDField(allow_null=True)
    comment_id = serializers.UUIDField(allow_null=True)
    is_internal = serializers.BooleanField()

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        return present_attachment(attachment)


class CommentOutput(serializers.Serializer):
    id = serializers.UUIDField()
    ticket_id = serializers.UUIDField()
    author = serializers.CharField()
    author_type = serializers.ChoiceField(choices=["customer", "provider", "support", "system"])
    content = serializers.CharField()
    message = serializers.CharField(
        help_text="The same text as `content` (VirtEngine clients read `message`)."
    )
    created_at = serializers.DateTimeField()
    attachments = AttachmentOutput(many=True)
    is_internal = serializers.BooleanField()

    def to_representation(self, comment: Comment) -> dict[str, Any]:
        attachments = self.context.get("attachments_by_comment", {}).get(comment.id, [])
        return present_comment(comment, attachments)


class SlaTargetOutput(serializers.Serializer):
    due_at = serializers.DateTimeField(
        allow_null=True, help_text="Null without a policy, and while the clock is paused (it moves)."
    )
    met = serializers.BooleanField(allow_null=True, help_text="Decided when the target is: null until then.")
    breached = serializers.BooleanField()
    paused = serializers.BooleanField(help_text="The resolution clock pauses waiting on the customer.")
    seconds_remaining = serializers.IntegerField(
        allow_null=True,
        help_text="Of the target, on the policy's clock (working seconds on a business calendar); negative "
        "once overdue, frozen while paused, null once decided.",
    )


class SlaOutput(serializers.Serializer):
    first_response_due = serializers.DateTimeField(allow_null=True)
    resolution_due = serializers.DateTimeField(allow_null=True)
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response = SlaTargetOutput()
    resolution = SlaTargetOutput()


def _target(status: sla.TargetStatus) -> dict[str, Any]:
    return {
        "due_at": iso_timestamp(status.due_at),
        "met": status.met,
        "breached": status.breached,
        "paused": status.paused,
        "seconds_remaining": status.seconds_remaining,
    }


class ChainOutput(serializers.Serializer):
    state = serializers.ChoiceField(choices=["pending", "anchored", "failed"])
    tx_hash = serializers.CharField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)


class MatchOutput(serializers.Serializer):
    rank = serializers.FloatField(help_text="Relevance: higher is a better match.")
    snippet = serializers.CharField(
        allow_null=True,
        help_text=(
            "An excerpt of the text that matched (the newest matching comment the caller may read, else the "
            "description), HTML-escaped, the matched words in `<mark>`; null when the ticket "
            "matched by its subject, number, a file name, a lease ID or a person."
        ),
    )


class TicketOutput(serializers.Serializer):
    """A ticket as listed (VirtEngine's `Ticket` plus the portal's fields), rendered from a selector row."""

    id = serializers.UUIDField()
    number = serializers.CharField(help_text="Human number, e.g. SUP-000123.")
    deployment_id = serializers.CharField(help_text="Lease ID owner/dseq/gseq/oseq.")
    deployment_name = serializers.CharField()
    provider = serializers.CharField(help_text="The provider's chain address.")
    provider_name = serializers.CharField()
    subject = serializers.CharField()
    description = serializers.CharField()
    category = serializers.ChoiceField(choices=Ticket.Category.choices)
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices)
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    created_by = serializers.CharField()
    created_by_type = serializers.ChoiceField(choices=["customer", "provider", "support", "system"])
    assigned_to = serializers.CharField(
        help_text="`provider`, `support`, or the username working the ticket."
    )
    assignee_type = serializers.ChoiceField(choices=Ticket.AssigneeKind.choices)
    escalated = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    metadata = serializers.DictField()
    sla = SlaOutput()
    chain = ChainOutput()
    match = MatchOutput(
        allow_null=True, help_text="Where the ticket matched the search (`q`); null when not searching."
    )

    def to_representation(self, row: dict[str, Any]) -> dict[str, Any]:
        return ticket_output(row, now=self.context.get("now") or timezone.now())


def ticket_output(row: dict[str, Any], *, now: datetime.datetime) -> dict[str, Any]:
    """A selector row as `TicketOutput` renders it (the list renders its rows with this straight away:
    DRF's serializer around it cost as much again)."""
    chain = row.get(CHAIN_COLUMN) or {}
    targets = ticket_sla(row, now=now)
    return {
        "id": str(row["id"]),
        "number": format_ticket_number(row["number"]),
        "deployment_id": row["deployment_lease_id"],
        "deployment_name": row["deployment_name"],
        "provider": row["provider_address"],
        "provider_name": row["provider_name"],
        "subject": row["subject"],
        "description": row["description"],
        "category": row["category"],
        "priority": row["priority"],
        "status": row["status"],
        "created_by": row["created_by_label"],
        "created_by_type": row["created_by_kind"],
        "assigned_to": row["assigned_to_username"] or row["assignee_kind"],
        "assignee_type": row["assignee_kind"],
        "escalated": row["escalated_at"] is not None,
        "created_at": iso_timestamp(row["created_at"]),
        "updated_at": iso_timestamp(row[VISIBLE_UPDATED_AT]),
        "resolved_at": iso_timestamp(row["resolved_at"]),
        "closed_at": iso_timestamp(row["closed_at"]),
        "metadata": row["metadata"],
        "sla": {
            "first_response_due": iso_timestamp(row["sla_first_response_due"]),
            "resolution_due": iso_timestamp(row["sla_resolution_due"]),
            "first_response_at": iso_timestamp(row["first_response_at"]),
            "first_response": _target(targets["first_response"]),
            "resolution": _target(targets["resolution"]),
        },
        "chain": {
            "state": chain.get("state", "pending"),
            "tx_hash": chain.get("tx_hash") or None,
            "height": chain.get("height"),
        },
        "match": _match(row),
    }


def _match(row: dict[str, Any]) -> dict[str, Any] | None:
    if SEARCH_RANK not in row:
        return None
    return {"rank": row[SEARCH_RANK], "snippet": row.get(SEARCH_SNIPPET)}


class DeploymentLinkOutput(serializers.Serializer):
    deployment_id = serializers.CharField()
    deployment_name = serializers.CharField()
    linked_at = serializers.DateTimeField()


class EventOutput(serializers.Serializer):
    """A ticket event as the caller may read it (the same object as the WebSocket message)."""

    seq = serializers.IntegerField(
        help_text="In the caller's own numbering (customers never see internal events)."
    )
    type = serializers.CharField()
    ticket_id = serializers.UUIDField()
    actor = serializers.CharField()
    actor_type = serializers.CharField()
    data = serializers.DictField(
        help_text="The payload declared for the event type (tickets/presenter.py). `assignment_change`: "
        "`from`, `to`, `escalation`, `reason` (empty for a customer when the reason is internal), "
        "`customer_message` (null if none) and, for provider and support, `reason_internal`."
    )
    timestamp = serializers.DateTimeField()

    def to_representation(self, presented: dict[str, Any]) -> dict[str, Any]:
        return presented


def present_links(links: Iterable[DeploymentLink]) -> list[dict[str, Any]]:
    """A ticket's related deployments as `TicketDetail.related_deployments` gives them."""
    return [
        {
            "deployment_id": link.deployment.lease_id,
            "deployment_name": link.deployment.name,
            "linked_at": iso_timestamp(link.created_at),
        }
        for link in links
    ]


class TicketDetailOutput(TicketOutput):
    """A ticket with its thread, attachments, related deployments and history (VirtEngine's
    `TicketDetail`, extended), rendered from a `selectors.TicketDetail`."""

    comments = CommentOutput(many=True)
    attachments = AttachmentOutput(many=True)
    related_deployments = DeploymentLinkOutput(many=True)
    history = EventOutput(
        many=True,
        help_text="Status, priority and assignment changes, links, SLA and log events (comments and "
        "attachments are in `comments` and `attachments`).",
    )
    last_seq = serializers.IntegerField(
        help_text="Last event seq visible to the caller (for WebSocket `since`)."
    )

    def to_representation(self, detail: TicketDetail) -> dict[str, Any]:
        data = super().to_representation(detail.row)
        related = detail.related
        data["comments"] = [
            present_comment(c, related.attachments_by_comment.get(c.id, ())) for c in detail.comments
        ]
        data["attachments"] = [present_attachment(a) for a in detail.attachments]
        data["related_deployments"] = present_links(detail.links)
        data["history"] = present_events(detail.history, self.context["audience"], related)
        data["last_seq"] = detail.last_seq
        return data


class DeploymentOutput(serializers.Serializer):
    id = serializers.CharField(help_text="Lease ID owner/dseq/gseq/oseq.")
    name = serializers.CharField()
    owner = serializers.CharField()
    provider = serializers.CharField()
    provider_name = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, deployment: Deployment) -> dict[str, Any]:
        return {
            "id": deployment.lease_id,
            "name": deployment.name,
            "owner": deployment.owner_address,
            "provider": deployment.provider.address,
            "provider_name": deployment.provider.name,
            "created_at": iso_timestamp(deployment.created_at),
        }


class TransitionErrorOutput(ErrorOutput):
    """A 409: an illegal transition carries the current status and the allowed targets."""

    current = serializers.CharField(required=False)
    allowed = serializers.ListField(child=serializers.CharField(), required=False)

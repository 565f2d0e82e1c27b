"""Support console (first cut): every ticket model, browsable and filterable.

Status, priority and assignment are read-only here on purpose: they change only through
`tickets.services` (the full console with its actions is a later issue).
"""

from django.contrib import admin
from django.db.models import QuerySet

from chain.models import OutboxEntry
from chain.selectors import CHAIN_STATE_FIELD, chain_state_of, with_chain_state
from tickets.models import (
    Assignment,
    Attachment,
    BusinessCalendar,
    Comment,
    DeploymentLink,
    SlaPolicy,
    Ticket,
    TicketEvent,
)


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    can_delete = False
    fields = ("created_at", "author_label", "author_kind", "is_internal", "body")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    can_delete = False
    fields = ("seq", "public_seq", "kind", "is_internal", "actor_label", "created_at", "data")
    readonly_fields = fields
    ordering = ("seq",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ChainAnchoringInline(admin.TabularInline):
    """Each event's anchoring: state, attempts and back-off, the receipt (backend, tx hash, height, time)."""

    model = OutboxEntry
    verbose_name = "chain anchoring"
    verbose_name_plural = "chain anchoring (one row per event)"
    extra = 0
    can_delete = False
    fields = (
        "seq",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "backend",
        "tx_hash",
        "height",
        "anchored_at",
    )
    readonly_fields = fields
    ordering = ("seq",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = (
        "display_number",
        "subject",
        "status",
        "priority",
        "category",
        "provider",
        "assignee_kind",
        "assigned_to",
        "sla_resolution_due",
        "chain_state",
        "created_at",
    )
    list_filter = ("status", "priority", "category", "assignee_kind", "provider", "escalated_at")
    search_fields = ("subject", "number", "deployment__lease_id", "customer_address")
    list_select_related = ("provider", "assigned_to")
    date_hierarchy = "created_at"
    readonly_fields = (
        "id",
        "number",
        "deployment",
        "provider",
        "customer_address",
        "status",
        "priority",
        "assignee_kind",
        "assigned_to",
        "created_by",
        "created_by_kind",
        "created_by_address",
        "created_by_label",
        "created_at",
        "updated_at",
        "last_activity_at",
        "resolved_at",
        "closed_at",
        "escalated_at",
        "first_response_at",
        "sla_first_response_due",
        "sla_resolution_due",
        "last_seq",
        "last_public_seq",
        "chain_receipt",
    )
    inlines = (CommentInline, EventInline, ChainAnchoringInline)

    def get_queryset(self, request) -> QuerySet[Ticket]:
        return with_chain_state(super().get_queryset(request), sees_internal=True)

    @admin.display(description="Number", ordering="number")
    def display_number(self, ticket: Ticket) -> str:
        return ticket.display_number

    @admin.display(description="Chain")
    def chain_state(self, ticket: Ticket) -> str:
        """pending | anchored | failed, as the API shows it (failed: an event is retrying with back-off)."""
        return chain_state_of(getattr(ticket, CHAIN_STATE_FIELD, None)).state

    @admin.display(description="Chain state")
    def chain_receipt(self, ticket: Ticket) -> str:
        state = chain_state_of(getattr(ticket, CHAIN_STATE_FIELD, None))
        if state.tx_hash:
            return f"{state.state} — latest tx {state.tx_hash} at height {state.height}"
        return state.state


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("ticket", "author_label", "author_kind", "is_internal", "created_at")
    list_filter = ("is_internal", "author_kind")
    search_fields = ("body", "ticket__subject")
    raw_id_fields = ("ticket", "author")


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("filename", "ticket", "content_type", "size", "is_internal", "uploaded_at")
    list_filter = ("is_internal", "content_type")
    search_fields = ("filename", "sha256")
    raw_id_fields = ("ticket", "comment", "uploaded_by")
    readonly_fields = ("sha256", "size", "storage_key", "content_type")


@admin.register(DeploymentLink)
class DeploymentLinkAdmin(admin.ModelAdmin):
    list_display = ("ticket", "deployment", "added_by_label", "created_at")
    raw_id_fields = ("ticket", "deployment")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = (
        "ticket",
        "from_kind",
        "from_user",
        "to_kind",
        "to_user",
        "by_label",
        "is_escalation",
        "created_at",
    )
    list_filter = ("is_escalation", "to_kind")
    raw_id_fields = ("ticket", "from_user", "to_user")


class SuperuserEditsOnly:
    """SLA policies and calendars: staff may look, only superusers change them. A change applies to tickets
    opened (or re-prioritised) from then on; the due times of existing tickets stay as they were decided."""

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(SlaPolicy)
class SlaPolicyAdmin(SuperuserEditsOnly, admin.ModelAdmin):
    list_display = (
        "priority",
        "first_response_minutes",
        "resolution_minutes",
        "calendar",
        "escalate_on_breach",
    )
    list_select_related = ("calendar",)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(SuperuserEditsOnly, admin.ModelAdmin):
    list_display = ("name", "time_zone", "holiday_country", "holiday_subdivision")


@admin.register(TicketEvent)
class TicketEventAdmin(admin.ModelAdmin):
    list_display = ("ticket", "seq", "public_seq", "kind", "is_internal", "actor_label", "created_at")
    list_filter = ("kind", "is_internal", "actor_kind")
    raw_id_fields = ("ticket", "actor")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the history is append-only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

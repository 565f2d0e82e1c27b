"""The support console's ticket models: read-only, always.

Tickets, comments, attachments, links, assignments and events can be browsed and filtered but not added,
changed or deleted here, by anyone: a change made around the services would have no event, no broadcast
and no anchor. A ticket's page is the console's work page (console.views), where every change is a
service call; the changelist's bulk actions call the services one ticket at a time.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from chain.selectors import CHAIN_STATE_FIELD, chain_state_of, with_chain_state
from console import views as console
from console.forms import BulkPriorityForm
from core.errors import ApplicationError
from tickets import selectors, services
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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse and filter; no add, change or delete for anyone (the services are the one write path)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = (
        "display_number",
        "subject_with_match",
        "status",
        "priority",
        "provider",
        "assignee",
        "sla_resolution_due",
        "chain_state",
        "created_at",
        "last_activity_at",
    )
    list_filter = ("status", "priority", "category", "assignee_kind", "provider")
    # The search box reads through the one search service (`get_search_results`); Django needs a
    # non-empty `search_fields` to show it.
    search_fields = ("subject",)
    search_help_text = (
        'Words in any form, "an exact phrase", -without, or; a ticket number (SUP-000123, 123); a customer\'s '
        "name, email or address; a provider; a lease ID. Best match first unless you sort by a column."
    )
    list_select_related = ("provider", "assigned_to")
    date_hierarchy = "created_at"
    actions = ("assign_to_me", "change_priority", "close_resolved")

    class Media:
        css = {"all": ("portal/console.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return with_chain_state(super().get_queryset(request), sees_internal=True)

    # -- search: the same service as the portal and the API ----------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str
    ) -> tuple[QuerySet[Ticket], bool]:
        query = selectors.parse_search(search_term)
        if query is None:
            return queryset, False
        results = selectors.ticket_search(queryset, console.support_party(request), query)
        if ORDER_VAR not in request.GET:  # best match first, unless a column is chosen to sort by
            results = results.order_by(f"-{selectors.SEARCH_RANK}", "-number")
        return results, False

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        query = selectors.parse_search(changelist.query)
        if query is not None:
            snippets = selectors.search_snippets(
                console.support_party(request), [ticket.pk for ticket in changelist.result_list], query
            )
            for ticket in changelist.result_list:
                ticket.search_snippet = snippets.get(str(ticket.pk))
        return changelist

    @admin.display(description="Subject")
    def subject_with_match(self, ticket: Ticket) -> str:
        snippet = getattr(ticket, "search_snippet", None)
        if not snippet:
            return ticket.subject
        # The snippet is escaped by the selector, with only its <mark> tags as markup.
        return format_html('{}<span class="search-snippet">{}</span>', ticket.subject, mark_safe(snippet))  # noqa: S308

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm(console.WORK_PERMISSION):
            return {}
        return actions

    @admin.display(description="Number", ordering="number")
    def display_number(self, ticket: Ticket) -> str:
        return ticket.display_number

    @admin.display(description="Assigned to")
    def assignee(self, ticket: Ticket) -> str:
        if ticket.assigned_to_id:
            return f"{ticket.assigned_to.get_username()} ({ticket.assignee_kind})"
        return f"{ticket.assignee_kind} queue"

    @admin.display(description="Chain")
    def chain_state(self, ticket: Ticket) -> str:
        """pending | anchored | failed, as the API shows it (failed: an event is retrying with back-off)."""
        return chain_state_of(getattr(ticket, CHAIN_STATE_FIELD, None)).state

    # -- the work page and its actions ------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.act),
                name="tickets_ticket_act",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A ticket's page in the console is where support works it."""
        return console.ticket_page(request, self.admin_site, object_id)

    def act(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        return console.ticket_act(request, self.admin_site, object_id, action)

    # -- bulk actions: one service call per ticket, each with its own event ------------------------------

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Ticket], verb: str, change: Any
    ) -> tuple[list[str], list[str]]:
        party = console.support_party(request)
        done, refused = [], []
        for ticket in queryset.order_by("number"):
            try:
                change(party, ticket)
            except ApplicationError as error:
                refused.append(f"{ticket.display_number}: {error.message}")
                continue
            console.log_console_action(request, ticket.pk, verb)
            done.append(ticket.display_number)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        for refusal in refused:
            self.message_user(request, refusal, messages.ERROR)
        return done, refused

    @admin.action(description="Assign the selected tickets to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._each(
            request,
            queryset,
            "Assigned to you",
            lambda party, ticket: services.ticket_assign(
                actor=party,
                ticket_id=ticket.pk,
                assignee_kind=Ticket.AssigneeKind.SUPPORT,
                assignee_user_id=request.user.pk,
                reason="Taken from the changelist",
            ),
        )

    @admin.action(description="Change the priority of the selected tickets")
    def change_priority(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = BulkPriorityForm(request.POST if "priority" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Change the priority",
                "tickets": queryset.order_by("number"),
                "form": form,
                "action": "change_priority",
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/console/bulk_priority.html", context)
        priority = form.cleaned_data["priority"]
        self._each(
            request,
            queryset,
            f"Priority set to {priority}",
            lambda party, ticket: services.ticket_priority_set(
                actor=party, ticket_id=ticket.pk, priority=priority
            ),
        )
        return None

    @admin.action(description="Close the selected tickets that are resolved")
    def close_resolved(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        def close(party: Any, ticket: Ticket) -> None:
            if ticket.status != Ticket.Status.RESOLVED:
                raise ApplicationError(f"not resolved ({ticket.get_status_display().lower()}); left as it is")
            services.ticket_transition(actor=party, ticket_id=ticket.pk, status=Ticket.Status.CLOSED)

        self._each(request, queryset, "Closed", close)


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "author_label", "author_kind", "is_internal", "created_at")
    list_filter = ("is_internal", "author_kind")
    search_fields = ("body", "ticket__subject")
    list_select_related = ("ticket",)


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("filename", "ticket", "content_type", "size", "is_internal", "uploaded_at")
    list_filter = ("is_internal", "content_type")
    search_fields = ("filename", "sha256")
    list_select_related = ("ticket",)


@admin.register(DeploymentLink)
class DeploymentLinkAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "deployment", "added_by_label", "created_at")
    list_select_related = ("ticket", "deployment")


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
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
    list_select_related = ("ticket", "from_user", "to_user")


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "seq", "public_seq", "kind", "is_internal", "actor_label", "created_at")
    list_filter = ("kind", "is_internal", "actor_kind")
    list_select_related = ("ticket",)


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
    """Targets per priority: superusers edit them; support agents see them (their group may only view)."""

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

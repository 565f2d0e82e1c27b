"""The support console's ticket models: read-only, always.

Tickets, comments, attachments, links, assignments and events can be browsed and filtered but not added,
changed or deleted here, by anyone: a change made around the services would have no event, no broadcast
and no anchor. A ticket's page is the console's work page (console.views), where every change is a
service call; the changelist's bulk actions call the services one ticket at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR
from django.db.models import QuerySet
from django.forms import Script
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from console import views as console
from console.forms import BulkPriorityForm
from core.errors import ApplicationError
from core.parties import Party
from tickets import humanise, selectors, services
from tickets.api import serializers as io
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
from tickets.selectors.people import people_by_address
from tickets.selectors.search import PHRASE_RELEVANCE_CANDIDATES, RELEVANCE_CANDIDATES
from tickets.templatetags.portal import sla_indicator, sla_words


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
    # What an agent scans a list by; fits 1366 px (names, not addresses: the address is on hover and on the
    # customer's page).
    list_display = (
        "display_number",
        "subject_with_match",
        "customer",
        "provider_name",
        "status_words",
        "priority_words",
        "sla",
        "age",
    )
    list_display_links = ("display_number", "subject_with_match")
    list_filter = ("status", "priority", "category", "assignee_kind", "provider")
    # The search box reads through the one search service (`get_search_results`); Django needs a
    # non-empty `search_fields` to show it.
    search_fields = ("subject",)
    search_help_text = (
        'Words in any form, "an exact phrase", -without, or; a ticket number (SUP-000123, 123); a customer\'s '
        f"name, email or address; a provider; a lease ID. Best match first (among the {RELEVANCE_CANDIDATES} most "
        f"recently updated matches, {PHRASE_RELEVANCE_CANDIDATES} with a phrase) unless you sort by a column, "
        "which lists them all."
    )
    list_select_related = ("provider", "assigned_to")
    date_hierarchy = "created_at"
    actions = ("assign_to_me", "change_priority", "close_resolved")

    class Media:
        css = {"all": ("portal/console.css",)}
        js = (Script("portal/console.js", type="module"),)  # the keyboard shortcuts

    # -- search: the same service as the portal and the API ----------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str
    ) -> tuple[QuerySet[Ticket], bool]:
        query = selectors.parse_search(search_term)
        if query is None:
            return queryset, False
        best_first = ORDER_VAR not in request.GET  # best match first, unless a column is chosen to sort by
        results = selectors.ticket_search(
            queryset, console.support_party(request), query, best_first=best_first
        )
        if best_first:
            results = results.order_by(f"-{selectors.SEARCH_RANK}", "-number")
        return results, False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {"title": "Tickets", **(extra_context or {})})

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The page's tickets with what the columns show, read for the whole page at once: the people by
        their names, the SLA as every other page words it, and where a search matched."""
        changelist = super().get_changelist_instance(request)
        party = console.support_party(request)
        page = list(changelist.result_list)
        people = people_by_address([ticket.customer_address for ticket in page])
        now = timezone.now()
        rows = {
            row["id"]: io.TicketOutput(row, context={"now": now}).data
            for row in selectors.ticket_list(party, selectors.TicketFilters()).filter(
                pk__in=[ticket.pk for ticket in page]
            )
        }
        query = selectors.parse_search(changelist.query)
        snippets = selectors.search_snippets(party, [t.pk for t in page], query) if query is not None else {}
        for ticket in page:
            ticket.person = people.get(ticket.customer_address)
            ticket.row = rows.get(ticket.pk)
            ticket.search_snippet = snippets.get(str(ticket.pk))
        return changelist

    @admin.display(description="Customer")
    def customer(self, ticket: Ticket) -> str:
        person = getattr(ticket, "person", None)
        name = person.name if person is not None else ""
        url = reverse("admin:console-customer", args=[ticket.customer_address])
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            url,
            ticket.customer_address,
            name or f"{ticket.customer_address[:10]}…{ticket.customer_address[-4:]}",
        )

    @admin.display(description="Provider", ordering="provider__name")
    def provider_name(self, ticket: Ticket) -> str:
        return format_html('<span title="{}">{}</span>', ticket.provider.address, ticket.provider.name)

    @admin.display(description="Status", ordering="status")
    def status_words(self, ticket: Ticket) -> str:
        """The status, and under it the chain state (every surface shows it; it needs no column of its own)."""
        row = getattr(ticket, "row", None)
        chain = (row or {}).get("chain", {}).get("state", "pending")
        return format_html(
            '<span class="badge badge--status-{}">{}</span><span class="chain-state chain-state--{}">Chain: {}</span>',
            ticket.status,
            humanise.status(ticket.status),
            chain,
            humanise.chain_state(chain).lower(),
        )

    @admin.display(description="Priority", ordering="priority")
    def priority_words(self, ticket: Ticket) -> str:
        return humanise.priority(ticket.priority)

    @admin.display(description="SLA", ordering="sla_next_due")
    def sla(self, ticket: Ticket) -> str:
        row = getattr(ticket, "row", None)
        indicator = sla_indicator(row) if row is not None else None
        if indicator is None:
            return "—"
        return format_html('<span class="sla sla--{}">{}</span>', indicator["state"], sla_words(indicator))

    @admin.display(description="Age", ordering="-created_at")
    def age(self, ticket: Ticket) -> str:
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            humanise.iso_datetime(ticket.created_at),
            humanise.exact_time(ticket.created_at),
            humanise.duration(timezone.now() - ticket.created_at, resolution="min"),
        )

    @admin.display(description="Subject")
    def subject_with_match(self, ticket: Ticket) -> str:
        snippet = getattr(ticket, "search_snippet", None)
        if not snippet:
            return ticket.subject
        # The snippet is escaped by the selector, with only its <mark> tags as markup.
        return format_html('{}<span class="search-snippet">{}</span>', ticket.subject, mark_safe(snippet))  # noqa: S308

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not console.may_work(request):
            return {}
        return actions

    @admin.display(description="Number", ordering="number")
    def display_number(self, ticket: Ticket) -> str:
        return ticket.display_number

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
        self,
        request: HttpRequest,
        queryset: QuerySet[Ticket],
        verb: str,
        change: Callable[[Party, Ticket], object],
        skip: Callable[[Ticket], str | None] = lambda _ticket: None,
    ) -> BulkOutcome:
        """Apply `change` to each selected ticket it applies to (`skip` gives why not, else None), and say
        what happened in one line: what was done, and what was skipped and why."""
        party = console.support_party(request)
        outcome = BulkOutcome()
        for ticket in queryset.order_by("number"):
            reason = skip(ticket)
            if reason is None:
                try:
                    change(party, ticket)
                except ApplicationError as error:
                    reason = error.message.rstrip(".").lower()
            if reason is not None:
                outcome.skipped.setdefault(reason, []).append(ticket.display_number)
                continue
            console.log_console_action(request, ticket.pk, verb)
            outcome.done.append(ticket.display_number)
        level = messages.SUCCESS if outcome.done else messages.WARNING
        self.message_user(request, outcome.summary(verb), level)
        return outcome

    @admin.action(description="Assign the selected tickets to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        def skip(ticket: Ticket) -> str | None:
            if ticket.status == Ticket.Status.CLOSED:
                return "closed"
            if ticket.assigned_to_id == request.user.pk:
                return "already yours"
            return None

        self._each(
            request,
            queryset,
            "Assigned to you",
            lambda party, ticket: services.ticket_assign(
                actor=party,
                ticket_id=ticket.pk,
                assignee_kind=Ticket.AssigneeKind.SUPPORT,
                assignee_user_id=request.user.pk,
                reason="Taken from the ticket list",
            ),
            skip,
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

        def skip(ticket: Ticket) -> str | None:
            if ticket.status == Ticket.Status.CLOSED:
                return "closed"
            if ticket.priority == priority:
                return f"already {Ticket.Priority(priority).label.lower()}"
            return None

        self._each(
            request,
            queryset,
            f"Priority set to {Ticket.Priority(priority).label.lower()}",
            lambda party, ticket: services.ticket_priority_set(
                actor=party, ticket_id=ticket.pk, priority=priority
            ),
            skip,
        )
        return None

    @admin.action(description="Close the selected tickets that are resolved")
    def close_resolved(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        def skip(ticket: Ticket) -> str | None:
            if ticket.status == Ticket.Status.RESOLVED:
                return None
            return f"not resolved ({ticket.get_status_display().lower()})"

        self._each(
            request,
            queryset,
            "Closed",
            lambda party, ticket: services.ticket_transition(
                actor=party, ticket_id=ticket.pk, status=Ticket.Status.CLOSED
            ),
            skip,
        )


@dataclass
class BulkOutcome:
    done: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # why → which tickets

    def summary(self, verb: str) -> str:
        """One line: "Closed 2 tickets (SUP-000001, SUP-000002). Skipped 3: not resolved (…)."."""
        parts = []
        if self.done:
            parts.append(f"{verb}: {_tickets(self.done)}.")
        else:
            parts.append("Nothing changed.")
        if self.skipped:
            count = sum(len(numbers) for numbers in self.skipped.values())
            reasons = "; ".join(
                f"{reason} ({', '.join(_shortened(numbers))})" for reason, numbers in self.skipped.items()
            )
            parts.append(f"Skipped {count}: {reasons}.")
        return " ".join(parts)


def _tickets(numbers: list[str]) -> str:
    return f"{len(numbers)} ticket{'s' if len(numbers) != 1 else ''} ({', '.join(_shortened(numbers))})"


def _shortened(numbers: list[str], shown: int = 5) -> list[str]:
    return numbers if len(numbers) <= shown else [*numbers[:shown], f"and {len(numbers) - shown} more"]


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

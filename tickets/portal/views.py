"""The portal's pages: the ticket list, the create form and a ticket's page, for customers and provider members.

Thin: every read is a selector the REST API uses too, every write a service, and tickets are described by
the API's own output (tickets.api.serializers, tickets.presenter), so a page can never show or do what the
API would refuse. Partial pages (a row, a comment, the live parts of a ticket's page) are named templates
that htmx and the page's script fetch when an event arrives on the WebSocket.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import ApplicationError, NotFound
from core.parties import Party
from providers.selectors import deployment_choices, party_for_user
from tickets import selectors, services, states
from tickets.api import serializers as io
from tickets.api.pagination import ticket_page
from tickets.models import Ticket
from tickets.portal import redirects
from tickets.portal.forms import (
    EscalateForm,
    ReplyForm,
    TicketCreateForm,
    TicketFilterForm,
    add_refusal,
)
from tickets.portal.satisfaction_forms import SatisfactionForm
from tickets.presenter import audience_of
from tickets.services.recording import ROLE_OF_PARTY

PAGE_SIZE = 25
SUBMISSION_MEMORY_SECONDS = 24 * 3600
# The words on the buttons that move a ticket, by target status (and by who moves it back from resolved).
MOVE_LABELS = {
    Ticket.Status.IN_PROGRESS: "Mark in progress",
    Ticket.Status.WAITING_CUSTOMER: "Waiting for customer",
    Ticket.Status.RESOLVED: "Mark resolved",
    Ticket.Status.CLOSED: "Close ticket",
}
Page = Callable[..., HttpResponse]


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _to_sign_in(request: HttpRequest) -> HttpResponse:
    """To the sign-in page, coming back here after (for htmx: the page the fragment belongs to)."""
    current = request.headers.get("HX-Current-URL") if is_htmx(request) else None
    here = urlsplit(current) if current else None
    back = (here.path + (f"?{here.query}" if here.query else "")) if here else request.get_full_path()
    url = f"{reverse('sign-in')}?{urlencode({'next': back})}"
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def portal_page(view: Page) -> Page:
    """Signed-in people with a role only; a ticket they may not see is a 404 (as on the API)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return _to_sign_in(request)
        party = party_for_user(request.user)
        if party is None:
            return render(request, "portal/no_role.html", status=403)
        request.party = party
        try:
            return view(request, party, *args, **kwargs)
        except NotFound as error:
            raise Http404(error.message) from error

    return wrapper


def base_context(party: Party) -> dict[str, Any]:
    return {"party": party, "is_staff": party.sees_internal}


# ---------------------------------------------------------------------------------------------------------
# The list.


def _list_query(filters: dict[str, str]) -> tuple[selectors.TicketFilters, str]:
    searching = selectors.parse_search(filters.get("q")) is not None
    ordering = filters.get("ordering") or ("relevance" if searching else "-created_at")
    if ordering == "relevance" and not searching:
        ordering = "-created_at"
    return (
        selectors.TicketFilters(
            status=filters.get("status"), deployment_id=filters.get("deployment"), q=filters.get("q")
        ),
        ordering,
    )


@require_GET
@portal_page
def ticket_list(request: HttpRequest, party: Party) -> HttpResponse:
    deployments = deployment_choices(party)
    form = TicketFilterForm(request.GET or None, deployments=deployments)
    filters = form.filters() if form.is_bound else {}
    ticket_filters, ordering = _list_query(filters)
    try:
        page = ticket_page(
            party,
            ticket_filters,
            ordering=ordering,
            limit=PAGE_SIZE,
            cursor=request.GET.get("cursor") or None,
        )
    except ApplicationError:  # a stale or edited cursor: start from the first page
        page = ticket_page(party, ticket_filters, ordering=ordering, limit=PAGE_SIZE, cursor=None)
    next_query = None
    if page.next_cursor:
        next_query = urlencode({**filters, "cursor": page.next_cursor})
    context = {
        **base_context(party),
        "form": form,
        "tickets": io.TicketOutput(
            selectors.rows_with_snippets(party, page.items, ticket_filters.q), many=True
        ).data,
        "filters_query": urlencode(filters),
        "next_query": next_query,
        "filtered": bool(filters),
        "has_deployments": bool(deployments),
    }
    template = "portal/_ticket_table.html" if is_htmx(request) else "portal/ticket_list.html"
    return render(request, template, context)


@require_GET
@portal_page
def ticket_row(request: HttpRequest, party: Party, ticket_id: str) -> HttpResponse:
    """One row of the list, if the ticket is visible and matches the list's filters (else 204): what the
    list's script fetches when an event about a ticket arrives."""
    filters = TicketFilterForm(request.GET, deployments=deployment_choices(party)).filters()
    ticket_filters, _ = _list_query(filters)
    row = selectors.ticket_list(party, ticket_filters).filter(pk=selectors.parse_ticket_id(ticket_id)).first()
    if row is None:
        return HttpResponse(status=204)
    (row,) = selectors.rows_with_snippets(party, [row], ticket_filters.q)
    return render(request, "portal/_ticket_row.html", {"ticket": io.TicketOutput(row).data})


# ---------------------------------------------------------------------------------------------------------
# Opening a ticket.


def upload_files(party: Party, files: list[Any]) -> list[str]:
    return [str(services.attachment_upload(actor=party, upload=upload).id) for upload in files]


@require_http_methods(["GET", "POST"])
@portal_page
def ticket_create(request: HttpRequest, party: Party) -> HttpResponse:
    deployments = deployment_choices(party)
    targets = selectors.sla_targets()
    initial = {"deployment_id": request.GET.get("deployment")} if request.GET.get("deployment") else {}
    form = TicketCreateForm(
        request.POST or None,
        request.FILES or None,
        deployments=deployments,
        sla_targets=targets,
        initial=initial,
    )
    attachment_ids = request.POST.getlist("attachment_ids")
    if request.method == "POST" and form.is_valid():
        memory = f"portal-submission:{party.key}:{form.cleaned_data['submission_id']}"
        if not cache.add(memory, "", timeout=SUBMISSION_MEMORY_SECONDS):
            # The same form sent twice (a double click, a reload): the first submission's ticket.
            earlier = cache.get(memory)
            return (
                redirect("portal-ticket-detail", reference=earlier)
                if earlier
                else redirect("portal-ticket-list")
            )
        try:
            attachment_ids += upload_files(party, form.cleaned_data["files"])
            ticket = services.ticket_create(
                actor=party,
                deployment_id=form.cleaned_data["deployment_id"],
                subject=form.cleaned_data["subject"],
                description=form.cleaned_data["description"],
                category=form.cleaned_data["category"],
                priority=form.cleaned_data["priority"],
                attachment_ids=attachment_ids,
            )
        except ApplicationError as error:
            cache.delete(memory)
            add_refusal(form, error)
        else:
            cache.set(memory, ticket.display_number, timeout=SUBMISSION_MEMORY_SECONDS)
            return redirect("portal-ticket-detail", reference=ticket.display_number)
    context = {
        **base_context(party),
        "form": form,
        "uploads": selectors.uploads_of(party, attachment_ids),
        "has_deployments": bool(deployments),
    }
    return render(request, "portal/ticket_new.html", context, status=400 if form.errors else 200)


# ---------------------------------------------------------------------------------------------------------
# A ticket's page.


def _moves(party: Party, status: str) -> list[dict[str, str]]:
    """The status moves this party may make now (the state machine's table), labelled for buttons."""
    role = ROLE_OF_PARTY[party.kind]
    moves = []
    for target in states.allowed_targets(status, role):
        if target == Ticket.Status.CLOSED:
            continue  # closing is final: asked for on a page of its own (`ticket_close`), never one click
        label = "Reopen" if status == Ticket.Status.RESOLVED and target == Ticket.Status.IN_PROGRESS else None
        moves.append({"status": target.value, "label": label or MOVE_LABELS[target]})
    return moves


def ticket_context(party: Party, reference: str, **forms: Any) -> dict[str, Any]:
    detail = selectors.ticket_detail(party, selectors.ticket_id_for_reference(party, reference))
    ticket = io.TicketDetailOutput(detail, context={"audience": audience_of(party)}).data
    open_ticket = ticket["status"] != Ticket.Status.CLOSED
    escalated = ticket["escalated"] and ticket["assignee_type"] == Ticket.AssigneeKind.SUPPORT
    return {
        **base_context(party),
        "ticket": ticket,
        "reference": ticket["number"],
        "opening_files": opening_files(ticket),
        "moves": _moves(party, ticket["status"]) if open_ticket else [],
        "can_close": open_ticket and _may_close(party, ticket["status"]),
        "can_reply": open_ticket,
        "can_escalate": open_ticket and not escalated,
        "can_fetch_logs": open_ticket and party.sees_internal,
        "linkable": selectors.linkable_deployments(party, detail) if open_ticket else [],
        "macros": selectors.macro_names(party) if open_ticket else [],
        "satisfaction": selectors.satisfaction_panel(party, ticket),
        "satisfaction_form": SatisfactionForm(),
        "reply_form": forms.get("reply_form") or ReplyForm(),
        "escalate_form": forms.get("escalate_form") or EscalateForm(party=party),
        "error": forms.get("error"),
        "notice": forms.get("notice"),
    }


def opening_files(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """The files that came with the ticket (uploaded before it was opened, on no reply): shown on its
    opening message, as a reply's files are shown on the reply."""
    return [
        attachment
        for attachment in ticket["attachments"]
        if not attachment["comment_id"]
        and not attachment["is_internal"]
        and (attachment["uploaded_at"] or "") <= ticket["created_at"]
    ]


def _may_close(party: Party, status: str) -> bool:
    return Ticket.Status.CLOSED in states.allowed_targets(status, ROLE_OF_PARTY[party.kind])


@require_GET
@portal_page
def ticket_detail(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    context = ticket_context(party, reference, **redirects.recall(request, party, reference))
    if context["reference"] != reference:
        return redirect("portal-ticket-detail", reference=context["reference"])  # one address per ticket
    return render(request, "portal/ticket_detail.html", context)


@require_GET
@portal_page
def ticket_live(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    """The parts of a ticket's page that events change (header, actions, timeline, files), as htmx
    out-of-band swaps."""
    # An event's refresh leaves what the person's last action said where it is.
    context = {**ticket_context(party, reference), "live_refresh": True}
    return render(request, "portal/_ticket_live.html", context)


@require_GET
@portal_page
def ticket_comment(request: HttpRequest, party: Party, reference: str, comment_id: str) -> HttpResponse:
    """One comment of the thread, as the party may see it (404 for an internal note to a customer)."""
    context = ticket_context(party, reference)
    comment = next((c for c in context["ticket"]["comments"] if c["id"] == comment_id), None)
    if comment is None:
        raise Http404("No such comment.")
    return render(request, "portal/_comment.html", {**context, "comment": comment})

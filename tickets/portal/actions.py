"""The portal's actions on a ticket (reply, move, close, escalate, link, fetch logs): each a form that calls
one service. With htmx the changed parts of the page come back; without JavaScript, Post/Redirect/Get
(`tickets.portal.redirects`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError
from core.parties import Party
from tickets import humanise, selectors, services
from tickets.models import Ticket
from tickets.portal import redirects
from tickets.portal.forms import CloseForm, EscalateForm, LinkForm, ReplyForm, StatusForm, add_refusal
from tickets.portal.views import is_htmx, portal_page, ticket_context, upload_files
from tickets.selectors.collisions import replies_since_seen


def after_action(request: HttpRequest, party: Party, reference: str, **forms: Any) -> HttpResponse:
    """htmx: the changed parts of the page (400 when a form is refused). Without JavaScript: Post/Redirect/
    Get, back to the ticket's page (303) with the refusal or notice kept for it, so that reloading it never
    sends the form again."""
    refused = bool(forms.get("error")) or any(
        getattr(form, "errors", None) for name, form in forms.items() if name.endswith("_form")
    )
    if is_htmx(request):
        context = ticket_context(party, reference, **forms)
        return render(request, "portal/_ticket_live.html", context, status=400 if refused else 200)
    redirects.remember(request, reference, forms)
    anchor = "#reply" if forms.get("reply_form") else "#ticket-actions" if refused or forms else ""
    return redirects.see_other(reverse("portal-ticket-detail", args=[reference]) + anchor)


@require_POST
@portal_page
def ticket_reply(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    form = ReplyForm(request.POST, request.FILES)
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    later = replies_since_seen(party, ticket_id, request.POST.get("seen_seq"))
    if form.is_valid() and later:
        # As Zendesk does: someone answered while this was being written; the page now shows it.
        names = ", ".join(dict.fromkeys(reply.author for reply in later))
        form.add_error(None, f"{names} replied after you opened this ticket. Read it, then send yours again.")
    elif form.is_valid():
        try:
            attachment_ids = request.POST.getlist("attachment_ids") + upload_files(
                party, form.cleaned_data["files"]
            )
            services.comment_add(
                actor=party,
                ticket_id=ticket_id,
                body=form.cleaned_data["content"],
                is_internal=form.cleaned_data["is_internal"],
                attachment_ids=attachment_ids,
            )
        except ApplicationError as error:
            add_refusal(form, error)
        else:
            form = None
    return after_action(request, party, reference, reply_form=form)


def _act(request: HttpRequest, party: Party, reference: str, change: Callable[[Any], object]) -> HttpResponse:
    """Run one service call on the ticket; a refusal is shown on the page."""
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    try:
        change(ticket_id)
    except ApplicationError as error:
        return after_action(request, party, reference, error=error.message)
    return after_action(request, party, reference)


@require_POST
@portal_page
def ticket_move(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    form = StatusForm(request.POST)
    if not form.is_valid():
        return after_action(request, party, reference, error="Choose a status.")
    status = form.cleaned_data["status"]
    if status == Ticket.Status.CLOSED:
        return _to_close_confirmation(request, reference)  # never closed by one click
    return _act(
        request,
        party,
        reference,
        lambda ticket_id: services.ticket_transition(actor=party, ticket_id=ticket_id, status=status),
    )


def _to_close_confirmation(request: HttpRequest, reference: str) -> HttpResponse:
    url = reverse("portal-ticket-close", args=[reference])
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirects.see_other(url)


@require_http_methods(["GET", "POST"])
@portal_page
def ticket_close(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    """Closing asks first and says what it means (closed is final); a plain form: no JavaScript needed."""
    context = ticket_context(party, reference)
    ticket = context["ticket"]
    if not context["can_close"]:
        messages.error(request, "This ticket cannot be closed now.")
        return redirects.see_other(reverse("portal-ticket-detail", args=[context["reference"]]))
    form = CloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.ticket_transition(actor=party, ticket_id=ticket["id"], status=Ticket.Status.CLOSED)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Ticket closed. Open a new ticket if the problem comes back.")
        return redirects.see_other(reverse("portal-ticket-detail", args=[context["reference"]]))
    context["close_form"] = form
    context["can_reopen"] = any(move["label"] == "Reopen" for move in context["moves"])
    return render(request, "portal/ticket_close.html", context, status=400 if form.errors else 200)


@require_POST
@portal_page
def ticket_escalate(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    form = EscalateForm(request.POST, party=party)
    if not form.is_valid():
        return after_action(request, party, reference, escalate_form=form)
    reason = form.cleaned_data["reason"]
    customer_message = form.cleaned_data.get("customer_message", "")
    return _act(
        request,
        party,
        reference,
        lambda ticket_id: services.ticket_escalate(
            actor=party, ticket_id=ticket_id, reason=reason, customer_message=customer_message
        ),
    )


@require_POST
@portal_page
def ticket_link(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    form = LinkForm(request.POST)
    if not form.is_valid():
        return after_action(request, party, reference, error="Choose a deployment to link.")
    lease_id = form.cleaned_data["deployment_id"]
    return _act(
        request,
        party,
        reference,
        lambda ticket_id: services.deployment_link(actor=party, ticket_id=ticket_id, deployment_id=lease_id),
    )


@require_POST
@portal_page
def ticket_unlink(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    form = LinkForm(request.POST)
    if not form.is_valid():
        return after_action(request, party, reference, error="Choose a deployment to unlink.")
    lease_id = form.cleaned_data["deployment_id"]
    return _act(
        request,
        party,
        reference,
        lambda ticket_id: services.deployment_unlink(
            actor=party, ticket_id=ticket_id, deployment_id=lease_id
        ),
    )


@require_POST
@portal_page
def ticket_fetch_logs(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    try:
        again_at = services.deployment_logs_request(actor=party, ticket_id=ticket_id)
    except ApplicationError as error:
        return after_action(request, party, reference, error=error.message)
    if again_at is not None:
        wait = humanise.duration(again_at - timezone.now(), resolution="s")
        notice = (
            "The logs were asked for less than a minute ago and are on their way (they appear here as an "
            f"internal file). You can fetch them again in {wait}."
        )
    else:
        notice = "Fetching the deployment's logs; they appear here as an internal file."
    return after_action(request, party, reference, notice=notice)

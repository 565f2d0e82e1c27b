"""The portal's satisfaction pages: a ticket's customer rates it on its page once it is resolved, or through
the link in the resolution email (`/tickets/satisfaction/<token>/`), which works without signing in — the
signed, single-use token is the customer's authority, for that ticket only. The rules are the service's."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError
from core.parties import Party
from tickets import selectors, services
from tickets.models import Ticket
from tickets.portal.actions import after_action
from tickets.portal.forms import add_refusal
from tickets.portal.satisfaction_forms import SatisfactionForm
from tickets.portal.views import portal_page


@require_POST
@portal_page
def ticket_rate(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    """The rating form on a ticket's page (its customer, once resolved)."""
    form = SatisfactionForm(request.POST)
    if not form.is_valid():
        return after_action(request, party, reference, error="Choose a rating from 1 to 5.")
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    try:
        services.satisfaction_rate(actor=party, ticket_id=ticket_id, **form.cleaned_data)
    except ApplicationError as error:
        return after_action(request, party, reference, error=error.message)
    return after_action(request, party, reference, notice="Thank you for rating this ticket.")


@require_http_methods(["GET", "POST"])
def rate_by_link(request: HttpRequest, token: str) -> HttpResponse:
    """The email's link: a small page with the rating form; the token stands for the customer."""
    try:
        link = services.satisfaction_link_read(token)
        ticket = selectors.ticket_get(link.party, link.ticket_id)
    except ApplicationError:
        return render(request, "portal/satisfaction_link.html", {"invalid": True}, status=404)
    form = SatisfactionForm(request.POST or None)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            services.satisfaction_rate_by_link(token=token, **form.cleaned_data)
        except ApplicationError as error:
            add_refusal(form, error)
        else:
            done = True
    context = {
        "form": form,
        "done": done,
        "number": ticket.display_number,
        "subject": ticket.subject,
        "rateable": selectors.ticket_rateable(ticket) or done,
        "resolved": ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED),
    }
    return render(request, "portal/satisfaction_link.html", context, status=400 if form.errors else 200)

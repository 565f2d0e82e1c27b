"""The portal's macro pages: a provider's members list, write, change and delete their provider's macros
(`/tickets/macros/`), and apply one on a ticket's page. VirtEngine support's shared macros are managed in
the console (and through the API); a customer has no macros and gets a 404 here.

Thin, like every portal page: the rules are the services' (tickets.services.macros), reads the selectors'.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError
from core.parties import Party
from tickets import selectors, services
from tickets.models import TEXT_MAX_LENGTH, Ticket
from tickets.models.macros import MACRO_NAME_MAX_LENGTH, Macro
from tickets.portal.actions import after_action
from tickets.portal.forms import add_refusal
from tickets.portal.views import portal_page

PLACEHOLDER_HELP = ", ".join(f"{{{name}}}" for name in services.PLACEHOLDERS)
STATUS_CHOICES = [("", "Leave as it is"), *Ticket.Status.choices]
PRIORITY_CHOICES = [("", "Leave as it is"), *Ticket.Priority.choices]


class MacroForm(forms.Form):
    """A macro's fields; the service checks them (placeholders, the owner's allowed statuses)."""

    name = forms.CharField(max_length=MACRO_NAME_MAX_LENGTH)
    body = forms.CharField(
        label="Reply",
        required=False,
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=f"Placeholders: {PLACEHOLDER_HELP}. Empty: no reply.",
    )
    is_internal = forms.BooleanField(label="Post the reply as an internal note", required=False)
    status = forms.ChoiceField(label="Then set the status", choices=STATUS_CHOICES, required=False)
    priority = forms.ChoiceField(label="And the priority", choices=PRIORITY_CHOICES, required=False)

    @classmethod
    def of(cls, macro: Macro) -> MacroForm:
        return cls(
            initial={
                "name": macro.name,
                "body": macro.body,
                "is_internal": macro.is_internal,
                "status": macro.status,
                "priority": macro.priority,
            }
        )


class MacroApplyForm(forms.Form):
    macro_id = forms.UUIDField()


def _require_macros(party: Party) -> None:
    """Macro pages are a provider's (support's shared macros are managed in the console)."""
    if not (party.is_provider and selectors.party_uses_macros(party)):
        raise Http404("No such page.")


@require_http_methods(["GET", "POST"])
@portal_page
def macro_list(request: HttpRequest, party: Party) -> HttpResponse:
    """The provider's macros, and a form to write a new one."""
    _require_macros(party)
    form = MacroForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.macro_create(actor=party, **form.cleaned_data)
        except ApplicationError as error:
            add_refusal(form, error)
        else:
            return redirect("portal-macros")
    context = {"party": party, "is_staff": True, "macros": selectors.macro_list(party), "form": form}
    return render(request, "portal/macros.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@portal_page
def macro_edit(request: HttpRequest, party: Party, macro_id: str) -> HttpResponse:
    _require_macros(party)
    macro = selectors.macro_get(party, macro_id, manage=True)
    form = MacroForm(request.POST) if request.method == "POST" else MacroForm.of(macro)
    if request.method == "POST" and form.is_valid():
        try:
            services.macro_update(actor=party, macro_id=macro.pk, **form.cleaned_data)
        except ApplicationError as error:
            add_refusal(form, error)
        else:
            return redirect("portal-macros")
    context = {"party": party, "is_staff": True, "macro": macro, "form": form}
    return render(request, "portal/macros_edit.html", context, status=400 if form.errors else 200)


@require_POST
@portal_page
def macro_delete(request: HttpRequest, party: Party, macro_id: str) -> HttpResponse:
    del request
    _require_macros(party)
    services.macro_delete(actor=party, macro_id=macro_id)
    return redirect("portal-macros")


@require_POST
@portal_page
def ticket_macro_apply(request: HttpRequest, party: Party, reference: str) -> HttpResponse:
    """Apply a macro on a ticket's page; a refusal shows there like any other action's."""
    form = MacroApplyForm(request.POST)
    if not form.is_valid():
        return after_action(request, party, reference, error="Choose a macro.")
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    applied: dict[str, Any] = {}
    try:
        services.macro_apply(actor=party, ticket_id=ticket_id, macro_id=form.cleaned_data["macro_id"])
    except ApplicationError as error:
        applied["error"] = error.message
    return after_action(request, party, reference, **applied)

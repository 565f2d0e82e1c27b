"""Post/Redirect/Get for the portal's forms without JavaScript: after a POST the browser is sent back (303)
to the ticket's page, and what that page must show — a refused form with what was typed and its errors, an
error or a notice — is kept in the session for that one GET. A reload never sends the form again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect

from core.parties import Party
from tickets.portal.forms import EscalateForm, ReplyForm

# Forms of a ticket's page whose refusal survives the redirect after a POST (Post/Redirect/Get).
RECALLED_FORMS = ("reply_form", "escalate_form")


def _remembered_key(reference: str) -> str:
    return f"portal-forms:{reference}"


def remember(request: HttpRequest, reference: str, forms: dict[str, Any]) -> None:
    """Keep what the page must show after the redirect: a refused form (what was typed, its errors) in
    the session, an error or a notice as a message."""
    kept = {
        name: {
            "data": {key: values for key, values in form.data.lists() if key != "csrfmiddlewaretoken"},
            "errors": {field: list(errors) for field, errors in form.errors.items()},
        }
        for name, form in forms.items()
        if name in RECALLED_FORMS and form is not None and form.errors
    }
    if kept:
        request.session[_remembered_key(reference)] = kept
    if forms.get("error"):
        messages.error(request, forms["error"])
    if forms.get("notice"):
        messages.success(request, forms["notice"])


def recall(request: HttpRequest, party: Party, reference: str) -> dict[str, Any]:
    """What `_remember` kept for this page (once: it is gone after this GET)."""
    recalled: dict[str, Any] = {}
    for message in messages.get_messages(request):
        recalled["error" if message.level >= messages.WARNING else "notice"] = message.message
    kept = request.session.pop(_remembered_key(reference), None) or {}
    builders = {"reply_form": ReplyForm, "escalate_form": lambda data: EscalateForm(data, party=party)}
    for name, saved in kept.items():
        if name not in builders:
            continue
        data = QueryDict(mutable=True)
        for key, values in saved.get("data", {}).items():
            data.setlist(key, values)
        form = builders[name](data)
        form.show_errors(saved.get("errors", {}))
        recalled[name] = form
    return recalled


def see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303  # the browser GETs the page: a reload does not post again
    return response

"""Forms of the portal's pages: they check what a person typed and keep it on the page when a check fails.

The rules stay the services' (tickets.services); the forms only name the fields, offer the choices the
person may pick and carry a service's refusal back to the field it is about.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.utils.choices import BaseChoiceIterator

from core.errors import ApplicationError
from core.parties import Party
from providers.models import LEASE_ID_MAX_LENGTH
from tickets import humanise
from tickets.models import REASON_MAX_LENGTH, SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH, Ticket
from tickets.selectors import parse_search

ORDERINGS = [
    # Blank: best match first when searching, else newest first (`views._list_query`).
    ("", "Best match"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-updated_at", "Recently updated"),
    ("updated_at", "Least recently updated"),
    ("-priority", "Highest priority"),
    ("priority", "Lowest priority"),
]
# What the sort offers when nothing is searched: there is no best match, and the blank is newest first.
# Any of ORDERINGS is still accepted (a link, or a search just cleared); portal.js switches the two lists
# as the search box fills and empties.
ORDERINGS_NOT_SEARCHING = [("", "Newest first"), *(o for o in ORDERINGS if o[0] not in ("", "-created_at"))]


# A service names the API's fields; some are called otherwise on the pages.
API_FIELD_NAMES = {"message": "content", "file": "files", "attachment_ids": "files"}


def add_refusal(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's refusal next to the fields it names (or above the form)."""
    placed = False
    for field, messages in error.fields.items():
        name = API_FIELD_NAMES.get(field, field)
        if name in form.fields:
            for message in messages:
                form.add_error(name, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (screenshots and logs), each checked by the upload service."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class PlainChoices(BaseChoiceIterator):
    """(value, label) pairs of plain strings, taken as they are: Django normalises a list of choices pair by
    pair, twice (the field's and the widget's), which for a provider's hundred deployments was an eighth
    of the ticket list page's time."""

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        self.choices = choices

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.choices)


def deployment_label(lease_id: str, name: str | None) -> str:
    """A deployment in a list of choices: its name first, then its lease ID shortened."""
    short = humanise.short_lease_id(lease_id)
    return f"{name} ({short})" if name else short


class TicketFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Ticket.Status.choices], required=False)
    deployment = forms.ChoiceField(choices=[("", "Any deployment")], required=False)
    q = forms.CharField(max_length=200, required=False, strip=True, label="Search")
    ordering = forms.ChoiceField(choices=ORDERINGS, required=False, label="Sort by")

    def __init__(self, *args: Any, deployments: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if parse_search(self.data.get("q")) is None:  # what the list's query reads as no search
            self.fields["ordering"].widget.choices = ORDERINGS_NOT_SEARCHING
        self.fields["deployment"].choices = PlainChoices(
            [
                ("", "Any deployment"),
                *((lease_id, deployment_label(lease_id, name)) for lease_id, name in deployments),
            ]
        )

    def filters(self) -> dict[str, str]:
        """The valid filters (an invalid one is simply not applied)."""
        if not self.is_valid():
            return {name: self.cleaned_data.get(name, "") for name in ("q",) if name in self.cleaned_data}
        return {name: value for name, value in self.cleaned_data.items() if value}


def sla_targets_text(targets: dict[str, tuple[int, int]]) -> str:
    """ "Critical: first response 1 h, resolution 4 h · …", highest priority first."""
    parts = []
    for value, label in reversed(Ticket.Priority.choices):
        if value in targets:
            first, resolution = targets[value]
            parts.append(f"{label}: first response {_duration(first)}, resolution {_duration(resolution)}")
    return " · ".join(parts)


def _duration(minutes: int) -> str:
    if minutes % (24 * 60) == 0 and minutes >= 24 * 60:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} h"
    return f"{minutes} min"


class TicketCreateForm(forms.Form):
    deployment_id = forms.ChoiceField(label="Deployment")
    category = forms.ChoiceField(choices=Ticket.Category.choices, initial=Ticket.Category.TECHNICAL)
    priority = forms.ChoiceField(choices=Ticket.Priority.choices, initial=Ticket.Priority.MEDIUM)
    subject = forms.CharField(max_length=SUBJECT_MAX_LENGTH)
    description = forms.CharField(max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 8}))
    files = MultipleFileField(required=False, label="Screenshots and logs")
    # One id per form shown: a second submission of the same form opens no second ticket.
    submission_id = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        deployments: list[tuple[str, str]],
        sla_targets: dict[str, tuple[int, int]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["deployment_id"].choices = PlainChoices(
            [(lease_id, deployment_label(lease_id, name)) for lease_id, name in deployments]
        )
        self.fields["priority"].help_text = sla_targets_text(sla_targets)
        if not self.is_bound:
            self.initial.setdefault("submission_id", uuid.uuid4())


class RecalledForm(forms.Form):
    """A form shown again after Post/Redirect/Get: bound to what was typed, with the errors it was refused
    with (some come from services, after validation, so they are kept rather than found again)."""

    def show_errors(self, errors: dict[str, list[str]]) -> None:
        self.full_clean()
        self._errors = forms.utils.ErrorDict()
        for field, messages in errors.items():
            name = field if field in self.fields else forms.forms.NON_FIELD_ERRORS
            self._errors.setdefault(
                name, self.error_class(error_class="nonfield" if name == "__all__" else None)
            )
            self._errors[name].extend(messages)


class CloseForm(forms.Form):
    """Closing is confirmed on a page of its own: the form there says so."""

    confirm = forms.BooleanField(widget=forms.HiddenInput, initial=True)


class ReplyForm(RecalledForm):
    content = forms.CharField(
        max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 4}), label="Your reply"
    )
    is_internal = forms.BooleanField(required=False, label="Internal note (provider and support only)")
    files = MultipleFileField(required=False, label="Attach files")


class EscalateForm(RecalledForm):
    """Escalation, saying who reads what: a customer's reason is public (their provider and support read
    it); a provider's or support's reason is internal, with an optional message for the customer."""

    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why should VirtEngine support step in?",
        help_text="Your provider and VirtEngine support read this; it is shown in the ticket's history.",
    )
    customer_message = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Message to the customer (optional)",
        help_text="The customer reads this in the ticket's history instead of your reason.",
    )

    def __init__(self, *args: Any, party: Party, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if party.is_customer:
            del self.fields["customer_message"]
        else:
            self.fields["reason"].label = "Reason for VirtEngine support (internal)"
            self.fields[
                "reason"
            ].help_text = (
                "Only provider staff and VirtEngine support read this. The customer does not see it."
            )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Ticket.Status.choices)


class LinkForm(forms.Form):
    deployment_id = forms.CharField(max_length=LEASE_ID_MAX_LENGTH, label="Deployment")

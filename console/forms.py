"""Forms of the support console's pages. The rules stay the services'; these name the fields and offer the
choices support may pick (the portal's reply, status and link forms are shared)."""

from __future__ import annotations

from typing import Any

from django import forms

from tickets.models import SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH, Ticket

PROVIDER_QUEUE = "provider"
SUPPORT_QUEUE = "support"


class AssignForm(forms.Form):
    """To a queue (the provider's, support's) or to one support agent."""

    assignee = forms.ChoiceField(label="Assign to")
    reason = forms.CharField(max_length=2_000, required=False, label="Why (shown in the history)")

    def __init__(self, *args: Any, agents: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            (SUPPORT_QUEUE, "The support queue"),
            (PROVIDER_QUEUE, "Back to the provider"),
            *((f"agent:{user_id}", f"Agent {username}") for user_id, username in agents),
        ]

    def target(self) -> tuple[str, int | None]:
        """(assignee kind, user id or None) for `ticket_assign`."""
        value = self.cleaned_data["assignee"]
        if value.startswith("agent:"):
            return Ticket.AssigneeKind.SUPPORT, int(value.removeprefix("agent:"))
        return value, None


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Ticket.Priority.choices)


class EditForm(forms.Form):
    subject = forms.CharField(max_length=SUBJECT_MAX_LENGTH)
    description = forms.CharField(max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 6}))
    category = forms.ChoiceField(choices=Ticket.Category.choices)


class BulkPriorityForm(forms.Form):
    """The second step of the changelist's "change priority" action."""

    priority = forms.ChoiceField(choices=Ticket.Priority.choices)

"""The API's serializers of reassignments: escalating a ticket to support, and support's reassignment. Who
reads their reason differs by who wrote it (issue 29): the help texts say so in the schema."""

from __future__ import annotations

from rest_framework import serializers

from core.api import StrictSerializer, TextField, WholeNumberField
from tickets.models import REASON_MAX_LENGTH, Ticket

# PostgreSQL `integer` columns (user ids, sequence numbers): anything larger cannot name a row.
DB_INTEGER_MAX = 2_147_483_647

# Who reads an escalation or assignment reason (issue 29).
REASON_HELP = (
    "Why. A customer's reason is public; a provider's or support's is internal: only provider and support "
    "read it (in `data.reason` of the `assignment_change` event; customers get an empty `reason`)."
)
CUSTOMER_MESSAGE_HELP = (
    "Provider or support only: an optional message the customer reads about this change (in "
    "`data.customer_message` of the `assignment_change` event, on every surface). A customer sending it is "
    "a 400."
)


CUSTOMER_MESSAGE_RULE = "only a provider or support writes one (a customer's reason is already public)"


class EscalateInput(StrictSerializer):
    server_rules = {"customer_message": CUSTOMER_MESSAGE_RULE}

    reason = TextField(max_length=REASON_MAX_LENGTH, help_text=REASON_HELP)
    customer_message = TextField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text=CUSTOMER_MESSAGE_HELP,
    )


class AssignInput(StrictSerializer):
    server_rules = {"customer_message": CUSTOMER_MESSAGE_RULE}

    assignee_type = serializers.ChoiceField(choices=Ticket.AssigneeKind.choices)
    assignee_id = WholeNumberField(required=False, allow_null=True, min_value=1, max_value=DB_INTEGER_MAX)
    reason = TextField(
        max_length=REASON_MAX_LENGTH, required=False, allow_blank=True, default="", help_text=REASON_HELP
    )
    customer_message = TextField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text=CUSTOMER_MESSAGE_HELP,
    )

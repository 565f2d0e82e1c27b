"""Macro writes: creating, changing and deleting macros, and applying one to a ticket.

Applying a macro is the steps it names, done by the ticket services in one transaction — the reply (or
internal note) through `comment_add`, then the priority through `ticket_priority_set`, then the status
through `ticket_transition` — so it writes exactly the events those steps write by hand, checked by the same
rules (a refused step undoes the whole macro). Placeholders are checked when a macro is saved (an unknown one
is refused, naming the field) and filled in with plain text when it is applied: nothing but the named values
is ever read (no attribute or index access, no format specs).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Forbidden, ValidationFailed
from core.parties import Party
from core.text import clean_text
from providers.models import ProviderAccount
from tickets import states
from tickets.models import TEXT_MAX_LENGTH, Ticket
from tickets.models.macros import MACRO_NAME_MAX_LENGTH, Macro
from tickets.selectors.macros import (
    PlaceholderValues,
    macro_get,
    placeholder_values,
    require_macro_user,
)
from tickets.services import recording
from tickets.services.comments import comment_add
from tickets.services.tickets import ticket_priority_set, ticket_transition

# The placeholders a macro's reply may hold, and what each becomes.
PLACEHOLDERS: dict[str, str] = {
    "customer_name": "The customer's name (else their username, else their address)",
    "ticket_number": "The ticket's number, e.g. SUP-000123",
    "ticket_subject": "The ticket's subject",
    "deployment_name": "The deployment's name (else its lease ID)",
    "deployment_id": "The deployment's lease ID",
    "provider_name": "The provider's name",
    "agent_name": "Who applies the macro",
}
assert set(PLACEHOLDERS) == set(PlaceholderValues.__dataclass_fields__)


def _placeholder_error(message: str) -> ValidationFailed:
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    return ValidationFailed(
        f"body: {message}", fields={"body": [f"{message} Placeholders: {allowed}; {{{{ and }}}} for braces."]}
    )


def _parsed(body: str) -> list[tuple[str, str | None]]:
    """The body as (literal text, placeholder or None) pieces; ValidationFailed naming `body` for an
    unknown placeholder, a format spec, or an unmatched brace."""
    try:
        pieces = list(string.Formatter().parse(body))
    except ValueError as error:
        raise _placeholder_error(f"A brace is not matched ({error}).") from error
    parsed: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in pieces:
        if name is not None and name not in PLACEHOLDERS:
            raise _placeholder_error(f"Unknown placeholder {{{name}}}.")
        if spec or conversion:
            raise _placeholder_error(f"The placeholder {{{name}}} takes no format.")
        parsed.append((literal, name))
    return parsed


def clean_macro_body(body: str | None) -> str:
    """A macro's reply, checked: bounded, and only known placeholders."""
    text = clean_text("body", body, max_length=TEXT_MAX_LENGTH, required=False)
    _parsed(text)
    return text


def render_macro_body(body: str, values: PlaceholderValues) -> str:
    """The reply with its placeholders filled in (plain text; pages escape it like any comment)."""
    filled = values.as_dict()
    return "".join(literal + (filled[name] if name is not None else "") for literal, name in _parsed(body))


def _statuses_for(owner_is_support: bool) -> list[str]:
    """The statuses a macro's owner may move tickets to (the state machine's table)."""
    role = states.Role.SUPPORT if owner_is_support else states.Role.PROVIDER
    return [
        target.value
        for target in states.Status
        if any(states.can_transition(source, target, role) for source in states.Status)
    ]


@dataclass(frozen=True)
class MacroFields:
    name: str
    body: str
    is_internal: bool
    status: str
    priority: str


def _clean_fields(fields: MacroFields, *, owner_is_support: bool) -> MacroFields:
    name = clean_text("name", fields.name, max_length=MACRO_NAME_MAX_LENGTH, single_line=True)
    body = clean_macro_body(fields.body)
    status = fields.status or ""
    if status:
        recording.clean_choice("status", status, _statuses_for(owner_is_support))
    priority = fields.priority or ""
    if priority:
        recording.clean_choice("priority", priority, Ticket.Priority.values)
    if not (body or status or priority):
        raise ValidationFailed(
            "A macro must do something.",
            fields={"non_field_errors": ["Give a reply (body), a status and/or a priority."]},
        )
    return MacroFields(
        name=name, body=body, is_internal=bool(fields.is_internal), status=status, priority=priority
    )


def _save(macro: Macro) -> Macro:
    """Save, refusing a second macro of the same name for the same owner (naming the field)."""
    taken = Macro.objects.filter(provider_id=macro.provider_id, name=macro.name).exclude(pk=macro.pk).exists()
    if not taken:
        try:
            with transaction.atomic():
                macro.save()
        except IntegrityError:
            taken = True
    if taken:
        raise ValidationFailed(
            "A macro of this name exists.", fields={"name": ["This owner already has a macro of this name."]}
        )
    return macro


@transaction.atomic
def macro_create(
    *,
    actor: Party,
    name: str,
    body: str = "",
    is_internal: bool = False,
    status: str = "",
    priority: str = "",
    provider_id: int | None = None,
) -> Macro:
    """A new macro: a provider's for a provider party; support's shared one for support (or, from the
    console, a provider's, naming `provider_id`)."""
    require_macro_user(actor)
    if actor.is_provider:
        if provider_id is not None and provider_id != actor.provider_id:
            raise Forbidden("A provider manages its own macros only.")
        provider_id = actor.provider_id
    elif provider_id is not None and not ProviderAccount.objects.filter(pk=provider_id).exists():
        raise ValidationFailed("No such provider.", fields={"provider": ["No such provider."]})
    fields = _clean_fields(
        MacroFields(name, body, is_internal, status, priority), owner_is_support=provider_id is None
    )
    now = timezone.now()
    macro = Macro(
        provider_id=provider_id,
        name=fields.name,
        body=fields.body,
        is_internal=fields.is_internal,
        status=fields.status,
        priority=fields.priority,
        created_by_label=actor.label,
        created_at=now,
        updated_at=now,
    )
    return _save(macro)


@transaction.atomic
def macro_update(
    *,
    actor: Party,
    macro_id: object,
    name: str | None = None,
    body: str | None = None,
    is_internal: bool | None = None,
    status: str | None = None,
    priority: str | None = None,
) -> Macro:
    """Change a macro the actor manages (a provider its own, support any); None leaves a field as it is."""
    require_macro_user(actor)
    macro = macro_get(actor, macro_id, manage=True)
    fields = _clean_fields(
        MacroFields(
            name=macro.name if name is None else name,
            body=macro.body if body is None else body,
            is_internal=macro.is_internal if is_internal is None else is_internal,
            status=macro.status if status is None else status,
            priority=macro.priority if priority is None else priority,
        ),
        owner_is_support=macro.provider_id is None,
    )
    macro.name, macro.body, macro.is_internal = fields.name, fields.body, fields.is_internal
    macro.status, macro.priority = fields.status, fields.priority
    macro.updated_at = timezone.now()
    return _save(macro)


@transaction.atomic
def macro_delete(*, actor: Party, macro_id: object) -> None:
    """Delete a macro the actor manages. Tickets keep what it wrote: events never name the macro."""
    require_macro_user(actor)
    macro_get(actor, macro_id, manage=True).delete()


@transaction.atomic
def macro_apply(*, actor: Party, ticket_id: object, macro_id: object) -> Ticket:
    """Apply a macro the actor may use to a ticket they may see: its reply, then its priority, then its
    status, each through its service, all or nothing. A step that changes nothing (the priority or status
    the ticket already has) writes nothing, as by hand."""
    ticket = recording.lock_ticket(actor, ticket_id)  # NotFound first: an invisible ticket says nothing
    macro = macro_get(actor, macro_id)
    if macro.body:
        body = render_macro_body(macro.body, placeholder_values(ticket, actor))
        comment_add(actor=actor, ticket_id=ticket.pk, body=body, is_internal=macro.is_internal)
    if macro.priority:
        ticket_priority_set(actor=actor, ticket_id=ticket.pk, priority=macro.priority)
    if macro.status:
        ticket = ticket_transition(actor=actor, ticket_id=ticket.pk, status=macro.status)
    return ticket

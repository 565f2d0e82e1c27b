"""Macros on the console's work page: the form that picks one of support's shared macros, and the action that
applies it through `tickets.services.macro_apply` (the reply, priority and status, each through its service:
the same events as by hand). Wired into `console.views.ACTIONS` as `"macro"`, with the same signature as the
work page's other actions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.http import HttpRequest

from core.parties import Party
from tickets import selectors, services
from tickets.selectors.macros import MacroName


class MacroApplyForm(forms.Form):
    """One of the agent's macros (support's shared ones), by name."""

    macro_id = forms.ChoiceField(label="Macro")

    def __init__(self, *args: Any, macros: Iterable[MacroName], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["macro_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (str(macro.id), f"{macro.name} (internal note)" if macro.is_internal else macro.name)
            for macro in macros
        ]


def macro_apply_form(party: Party, data: Any = None) -> MacroApplyForm:
    """The work page's macro form (bound to `data` when given), offering the macros `party` may use."""
    return MacroApplyForm(data, macros=selectors.macro_names(party))


def apply_macro(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    """The work page's `macro` action: (what was done, or None with the bound form to show again)."""
    form = macro_apply_form(party, request.POST)
    if not form.is_valid():
        return None, {"macro_form": form}
    macro = selectors.macro_get(party, form.cleaned_data["macro_id"])
    services.macro_apply(actor=party, ticket_id=ticket_id, macro_id=macro.pk)
    return f"Applied the macro “{macro.name}”.", {}

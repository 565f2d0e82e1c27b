"""The project's form renderer (core.form_renderer) writes what Django's templates write: every field of the
console's and the portal's forms, unbound, bound and refused, with hostile values, and the templates it
leaves to Django."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.renderers import get_default_renderer
from django.utils.safestring import mark_safe

from console.forms import AssignForm, EditForm, PriorityForm
from console.macro_forms import MacroApplyForm
from core.form_renderer import DJANGO_TEMPLATES, PythonFormRenderer
from core.parties import Party, PartyKind
from tickets.portal.forms import (
    CloseForm,
    EscalateForm,
    LinkForm,
    ReplyForm,
    StatusForm,
    TicketCreateForm,
    TicketFilterForm,
)
from tickets.portal.satisfaction_forms import SatisfactionForm
from tickets.selectors.macros import MacroName

HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"


class Everything(forms.Form):
    """Widgets the work page does not use (yet), with values that need escaping."""

    grouped = forms.ChoiceField(
        choices=[("Queues", [("a", "A <1>"), ("b", 'B "2"')]), ("c", mark_safe("<b>C</b>")), (4, 4)],
        initial="b",
    )
    several = forms.MultipleChoiceField(choices=[("x", "X"), ("y", "Y")], initial=["x", "y"])
    radio = forms.ChoiceField(choices=[("r", "R")], widget=forms.RadioSelect)
    when = forms.DateField(initial="2026-01-02")
    hidden = forms.CharField(widget=forms.HiddenInput, initial=HOSTILE)
    number = forms.IntegerField(initial=12345, label=mark_safe("<i>Number</i>"))
    flag = forms.BooleanField(initial=True, widget=forms.CheckboxInput(attrs={"data-x": HOSTILE}))
    note = forms.CharField(widget=forms.Textarea, initial=mark_safe("<p>kept</p>"), help_text="Help")

    def clean(self) -> dict[str, Any]:
        raise forms.ValidationError(["The whole form: <refused>", "twice"])


MACROS = [MacroName(id=uuid.UUID(int=1), name=HOSTILE, is_internal=True)]


def pairs() -> list[tuple[str, Any]]:
    """(what, make) where make(renderer) gives a form: the work page's forms in the states it shows them."""
    agents = [(1, "agent"), (2, HOSTILE)]
    upload = SimpleUploadedFile("a.log", b"x")
    deployments = [("akash1lease/1/1", HOSTILE), ("akash1lease/2/1", "")]
    targets = {"high": (60, 480)}
    customer = Party(kind=PartyKind.CUSTOMER, label="akash1customer", user_id=1)
    provider = Party(kind=PartyKind.PROVIDER, label="provider member", user_id=2, provider_id=1)
    return [
        ("reply", lambda r: ReplyForm(renderer=r)),
        ("reply refused", lambda r: _validated(ReplyForm({"content": "", "is_internal": "on"}, renderer=r))),
        (
            "reply typed",
            lambda r: _validated(
                ReplyForm({"content": HOSTILE}, {"files": upload}, renderer=r)  # files are never shown again
            ),
        ),
        ("assign", lambda r: AssignForm(agents=agents, renderer=r)),
        (
            "assign refused",
            lambda r: _validated(
                AssignForm({"assignee": HOSTILE, "reason": HOSTILE}, agents=agents, renderer=r)
            ),
        ),
        (
            "assign chosen",
            lambda r: _validated(AssignForm({"assignee": "agent:2"}, agents=agents, renderer=r)),
        ),
        ("priority", lambda r: PriorityForm(initial={"priority": "high"}, renderer=r)),
        ("priority refused", lambda r: _validated(PriorityForm({"priority": "urgent"}, renderer=r))),
        (
            "edit",
            lambda r: EditForm(
                initial={"subject": HOSTILE, "description": HOSTILE, "category": "billing"}, renderer=r
            ),
        ),
        (
            "edit refused",
            lambda r: _validated(
                EditForm({"subject": "", "description": "x" * 30_000, "category": "x"}, renderer=r)
            ),
        ),
        ("macro", lambda r: MacroApplyForm(macros=MACROS, renderer=r)),
        (
            "macro refused",
            lambda r: _validated(MacroApplyForm({"macro_id": "nope"}, macros=MACROS, renderer=r)),
        ),
        ("portal filters", lambda r: TicketFilterForm(deployments=deployments, renderer=r)),
        (
            "portal filters chosen",
            lambda r: _validated(
                TicketFilterForm(
                    {"status": "open", "deployment": "akash1lease/2/1", "q": HOSTILE, "ordering": "x"},
                    deployments=deployments,
                    renderer=r,
                )
            ),
        ),
        (
            "new ticket",
            lambda r: TicketCreateForm(
                deployments=deployments,
                sla_targets=targets,
                initial={"submission_id": uuid.UUID(int=7)},
                renderer=r,
            ),
        ),
        (
            "new ticket refused",
            lambda r: _validated(
                TicketCreateForm(
                    {"deployment_id": HOSTILE, "subject": HOSTILE, "description": "", "submission_id": "x"},
                    deployments=deployments,
                    sla_targets=targets,
                    renderer=r,
                )
            ),
        ),
        ("escalate, customer", lambda r: EscalateForm(party=customer, renderer=r)),
        (
            "escalate, provider, refused",
            lambda r: _shown_again(EscalateForm({"reason": HOSTILE}, party=provider, renderer=r)),
        ),
        ("close", lambda r: CloseForm(renderer=r)),
        ("status", lambda r: _validated(StatusForm({"status": "nope"}, renderer=r))),
        ("link", lambda r: _validated(LinkForm({"deployment_id": HOSTILE}, renderer=r))),
        ("satisfaction (radio buttons: Django's)", lambda r: SatisfactionForm(renderer=r)),
        ("everything", lambda r: Everything(renderer=r)),
        (
            "everything refused",
            lambda r: _validated(Everything({"number": "x", "when": HOSTILE}, renderer=r)),
        ),
    ]


def _validated(form: forms.Form) -> forms.Form:
    form.is_valid()
    return form


def _shown_again(form: EscalateForm) -> EscalateForm:
    """As after Post/Redirect/Get, with a service's refusal among the errors."""
    form.show_errors({"reason": [HOSTILE], "__all__": ["Refused: <why>"]})
    return form


def rendered(form: forms.Form) -> dict[str, str]:
    parts = {"non-field errors": str(form.non_field_errors()), "as_div": form.as_div()}
    for field in form:
        parts[f"{field.name} widget"] = str(field)
        parts[f"{field.name} errors"] = str(field.errors)
        parts[f"{field.name} label"] = field.label_tag()
        parts[f"{field.name} label, no id"] = field.label_tag(attrs={"class": HOSTILE}, tag="span")
    return parts


@pytest.mark.parametrize(("what", "make"), pairs(), ids=[what for what, _ in pairs()])
def test_the_renderer_writes_what_djangos_templates_write(what: str, make: Any) -> None:
    django, python = make(DJANGO_TEMPLATES), make(PythonFormRenderer())
    assert rendered(python) == rendered(django)
    assert HOSTILE not in "".join(rendered(python).values())  # escaped everywhere


def test_every_form_uses_it_unless_told_otherwise() -> None:
    assert isinstance(get_default_renderer(), PythonFormRenderer)  # settings.FORM_RENDERER
    for form in (AssignForm(agents=[]), PriorityForm(), EditForm(), MacroApplyForm(macros=[]), ReplyForm()):
        assert isinstance(form.renderer, PythonFormRenderer)


def test_the_pages_fields_need_no_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the work page and the ticket page show of their forms is written without Django's templates
    (the point of it)."""

    class NoTemplates:
        def render(self, template_name: str, *args: Any, **kwargs: Any) -> str:
            raise AssertionError(f"rendered {template_name} with a template")

    monkeypatch.setattr("core.form_renderer.DJANGO_TEMPLATES", NoTemplates())
    forms_shown = [
        ReplyForm(),
        _validated(ReplyForm({"content": ""})),
        EscalateForm(party=Party(kind=PartyKind.PROVIDER, label="member", user_id=2, provider_id=1)),
        TicketFilterForm(deployments=[("akash1lease/1/1", "web")]),
        AssignForm(agents=[(1, "agent")]),
        PriorityForm(initial={"priority": "high"}),
        _validated(EditForm({"subject": ""})),
        MacroApplyForm(macros=MACROS),
    ]
    for form in forms_shown:
        assert str(form.non_field_errors()) == ""
        for field in form:
            assert str(field).startswith(("<input", "<textarea", "<select"))
            str(field.errors)
            assert field.label_tag().startswith("<label")

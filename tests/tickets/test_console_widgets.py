"""The console's form renderer (console.widgets) writes what Django's templates write: every field of the
work page's forms, unbound, bound and refused, with hostile values, and the templates it leaves to Django."""

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
from console.widgets import CONSOLE_RENDERER
from tickets.portal.forms import ReplyForm
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
        ("everything", lambda r: Everything(renderer=r)),
        (
            "everything refused",
            lambda r: _validated(Everything({"number": "x", "when": HOSTILE}, renderer=r)),
        ),
    ]


def _validated(form: forms.Form) -> forms.Form:
    form.is_valid()
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
def test_the_console_renderer_writes_what_djangos_templates_write(what: str, make: Any) -> None:
    django, console = make(get_default_renderer()), make(CONSOLE_RENDERER)
    assert console.renderer is CONSOLE_RENDERER
    assert rendered(console) == rendered(django)
    assert HOSTILE not in "".join(rendered(console).values())  # escaped everywhere


def test_the_console_forms_use_it_unless_told_otherwise() -> None:
    for form in (AssignForm(agents=[]), PriorityForm(), EditForm(), MacroApplyForm(macros=[])):
        assert form.renderer is CONSOLE_RENDERER
    assert ReplyForm().renderer is not CONSOLE_RENDERER  # the portal's form; the console passes it


def test_the_work_pages_fields_need_no_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the work page shows of its forms is written without Django's templates (the point of it)."""

    class NoTemplates:
        def render(self, template_name: str, *args: Any, **kwargs: Any) -> str:
            raise AssertionError(f"rendered {template_name} with a template")

    monkeypatch.setattr("console.widgets.get_default_renderer", NoTemplates)
    forms_shown = [
        ReplyForm(renderer=CONSOLE_RENDERER),
        _validated(ReplyForm({"content": ""}, renderer=CONSOLE_RENDERER)),
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

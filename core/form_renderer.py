"""The project's form renderer (`FORM_RENDERER`): Django's templates for inputs, text areas, selects, error
lists and labels, written out in Python; every other template (radio buttons, admin and theme widgets) is
rendered by Django's own renderer.

The console's work page shows nine form fields, the portal's ticket page five, and through the template
engine each costs a template render (a select, one per option besides): a fifth of the work page's time and
a twelfth of the ticket page's went there. These write the same markup as Django's templates, attributes,
ids, `aria-invalid` and `aria-describedby` included, because they read the same widget contexts Django
builds; `tests/core/test_form_renderer.py` compares them with Django's templates field by field, bound and
unbound, with and without errors, for the console's and the portal's forms, so a Django upgrade that
changes a template fails there rather than on a page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from django.forms.renderers import BaseRenderer, DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData

INPUT = "django/forms/widgets/input.html"
SELECT_OPTION = "django/forms/widgets/select_option.html"


def _value(value: Any) -> str:
    """`{{ value }}` under autoescape (`conditional_escape` after `localize`). Plain text, by far the most
    common value, is escaped with the standard library's `html.escape`, which Django's `escape` wraps (at a
    fraction of the cost of its check for lazy arguments)."""
    if type(value) is str:
        return escape(value)
    return str(conditional_escape(localize(value)))


def _formatted(value: Any) -> str:
    """`{{ value|stringformat:'s' }}` under autoescape (the filter keeps a safe value safe)."""
    return str(value) if isinstance(value, SafeData) else escape("%s" % value)  # noqa: UP031 - as the filter


def _attrs(attrs: Mapping[str, Any] | None) -> str:
    """django/forms/widgets/attrs.html (and django/forms/attrs.html)."""
    return "".join(
        f" {_value(name)}" if value is True else f' {_value(name)}="{_formatted(value)}"'
        for name, value in (attrs or {}).items()
        if value is not False
    )


def _input(widget: Mapping[str, Any]) -> str:
    value = "" if widget["value"] is None else f' value="{_formatted(widget["value"])}"'
    return f'<input type="{_value(widget["type"])}" name="{_value(widget["name"])}"{value}{_attrs(widget["attrs"])}>'


def _input_widget(context: Mapping[str, Any]) -> str | None:
    return _input(context["widget"])


def _file_widget(context: Mapping[str, Any]) -> str | None:
    """A file input (clearable, with no file yet: the only kind a form shown again has)."""
    widget = context["widget"]
    return None if widget.get("is_initial") else _input(widget)


def _textarea(context: Mapping[str, Any]) -> str | None:
    widget = context["widget"]
    value = _value(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{_value(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


def _select(context: Mapping[str, Any]) -> str | None:
    widget = context["widget"]
    parts = [f'<select name="{_value(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_value(group_name)}">')
        for option in group_choices:
            if option["template_name"] != SELECT_OPTION:
                return None
            # Each option is an included template, with its file's closing line break.
            parts.append(
                f'\n  <option value="{_formatted(option["value"])}"{_attrs(option["attrs"])}>'
                f"{_value(option['label'])}</option>\n"
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _errors(context: Mapping[str, Any]) -> str | None:
    errors = context["errors"]
    if not errors:
        return ""
    field_id = getattr(errors, "field_id", None)
    ids = f' id="{_value(field_id)}_error"' if field_id else ""
    items = "".join(f"<li>{_value(error)}</li>" for error in errors)
    return f'<ul class="{_value(context["error_class"])}"{ids}>{items}</ul>'


def _label(context: Mapping[str, Any]) -> str | None:
    if not context["use_tag"]:
        return _value(context["label"])
    tag = _value(context["tag"])
    return f"<{tag}{_attrs(context['attrs'])}>{_value(context['label'])}</{tag}>"


# Each of these is `{% include "django/forms/widgets/input.html" %}` (a renderer strips what it renders).
INPUT_KINDS = (
    "checkbox",
    "color",
    "date",
    "datetime",
    "email",
    "file",
    "hidden",
    "number",
    "password",
    "search",
    "tel",
    "text",
    "time",
    "url",
)

_WRITERS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    INPUT: _input_widget,
    **{f"django/forms/widgets/{kind}.html": _input_widget for kind in INPUT_KINDS},
    "django/forms/widgets/clearable_file_input.html": _file_widget,
    "django/forms/widgets/textarea.html": _textarea,
    "django/forms/widgets/select.html": _select,
    "django/forms/errors/list/default.html": _errors,
    "django/forms/errors/list/ul.html": _errors,
    "django/forms/label.html": _label,
}


# Django's default renderer (the project's FORM_RENDERER is the class below, so it is not asked for by name).
DJANGO_TEMPLATES = DjangoTemplates()


class PythonFormRenderer(BaseRenderer):
    """The templates in `_WRITERS` written out in Python; every other one (and any of them with a context
    they do not cover) rendered by Django's templates."""

    def get_template(self, template_name: str) -> Any:
        return DJANGO_TEMPLATES.get_template(template_name)

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        """The markup (its callers, Django's widgets and forms, mark it safe: every value in it is escaped)."""
        writer = _WRITERS.get(template_name)
        written = writer(context) if writer is not None else None
        if written is None:
            return str(DJANGO_TEMPLATES.render(template_name, context, request=request))
        return written

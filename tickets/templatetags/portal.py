"""Template helpers of the portal's pages: labels, times and the SLA indicator, computed from what the API
returns (no queries here)."""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html

from core.formats import parse_iso_timestamp
from tickets.models import Ticket

register = template.Library()

STATUS_LABELS = dict(Ticket.Status.choices)
PRIORITY_LABELS = dict(Ticket.Priority.choices)
CATEGORY_LABELS = dict(Ticket.Category.choices)
# The chain's anchoring state in VirtEngine's portal vocabulary.
CHAIN_LABELS = {"pending": "Queued", "anchored": "Confirmed", "failed": "Failed"}
ACTOR_LABELS = {
    "customer": "Customer",
    "provider": "Provider",
    "support": "VirtEngine support",
    "system": "System",
}
ASSIGNEE_LABELS = {"provider": "the provider", "support": "VirtEngine support"}


@register.filter
def status_label(value: str) -> str:
    return STATUS_LABELS.get(value, value)


@register.filter
def priority_label(value: str) -> str:
    return PRIORITY_LABELS.get(value, value)


@register.filter
def category_label(value: str) -> str:
    return CATEGORY_LABELS.get(value, value)


@register.filter
def chain_label(value: str) -> str:
    return CHAIN_LABELS.get(value, value)


@register.filter
def actor_label(value: str) -> str:
    return ACTOR_LABELS.get(value, value)


@register.filter
def assignee(value: dict[str, Any] | None) -> str:
    """`{"kind", "name"}` of an assignment event, in words."""
    if not value:
        return "nobody"
    queue = ASSIGNEE_LABELS.get(value.get("kind") or "", value.get("kind") or "")
    return f"{value['name']} ({queue})" if value.get("name") else queue


@register.filter
def short_hash(value: str | None) -> str:
    return f"{value[:10]}…{value[-6:]}" if value and len(value) > 20 else (value or "")


def _moment(value: str | datetime.datetime | None) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    try:
        return parse_iso_timestamp(value)
    except ValueError:
        return None


def _relative(delta: datetime.timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return "less than a minute"


@register.simple_tag
def timestamp(value: str | datetime.datetime | None, *, relative: bool = True) -> str:
    """`<time>` with the UTC time as text; the page's script shows it in the reader's zone and, with
    `relative`, how long ago (or until) it is."""
    moment = _moment(value)
    if moment is None:
        return ""
    utc = moment.astimezone(datetime.UTC)
    delta = timezone.now() - utc
    words = _relative(delta)
    ago = f"{words} ago" if delta.total_seconds() >= 0 else f"in {words}"
    return format_html(
        '<time datetime="{}" title="{}"{}>{}</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%d %b %Y, %H:%M UTC"),
        " data-relative" if relative else "",
        ago if relative else utc.strftime("%d %b %Y, %H:%M UTC"),
    )


AT_RISK_SECONDS = 3600


@register.simple_tag
def sla_indicator(ticket: dict[str, Any]) -> dict[str, str] | None:
    """The target that matters now (first response until it is decided, then resolution) and where the
    ticket stands against it, from the API's `sla` object: `{"state": ok|at_risk|breached|paused, "label",
    "due"}`, or None when no target runs."""
    if ticket["status"] in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
        return None
    sla = ticket.get("sla") or {}
    first, resolution = sla.get("first_response") or {}, sla.get("resolution") or {}
    name, target = (
        ("First response", first) if first and first.get("met") is None else ("Resolution", resolution)
    )
    if not target:
        return None
    if target.get("breached") or target.get("met") is False:
        return {"state": "breached", "label": f"{name} target breached", "due": target.get("due_at") or ""}
    if target.get("paused"):
        return {"state": "paused", "label": f"{name} clock paused (waiting for the customer)", "due": ""}
    remaining = target.get("seconds_remaining")
    if remaining is None:
        return None
    words = _relative(datetime.timedelta(seconds=remaining))
    state = "at_risk" if remaining <= AT_RISK_SECONDS else "ok"
    return {"state": state, "label": f"{name} due in {words}", "due": target.get("due_at") or ""}

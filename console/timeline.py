"""The work page's timeline as the page shows it: each presented event (`tickets.presenter`, staff
audience) with its chain receipt, in words and markup worked out here, once per event, so that the template
only places them.

A ticket's timeline is its longest part (every event since it was opened). Chosen per event kind in the
template (a chain of a dozen `{% elif %}` tests and twenty filters an event), it took as long as the ticket's
API read itself; built here it is a dictionary lookup and one string an event (`bench/console_pages.py`).
Text is escaped with the standard library's `html.escape`, which Django's `escape` wraps; comments go through
the portal's `message_html` (one rule for linking addresses on both faces, at a fraction of `urlize`'s cost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from django.template.defaultfilters import filesizeformat, truncatechars
from django.utils.safestring import SafeString

from chain.selectors import EventReceipt
from tickets import humanise
from tickets.templatetags.portal import assignee, message_html, short_hash, timestamp


@dataclass(frozen=True, slots=True)
class TimelineItem:
    css_class: str
    head: SafeString
    body: SafeString


def _text(value: object) -> str:
    return "" if value is None else escape(str(value))


def _file(url: object, filename: object, size: Any, internal_mark: str) -> str:
    return f'<a href="{_text(url)}">{_text(filename)}</a> ({_text(filesizeformat(size))}){internal_mark}'


def _comment(data: Mapping[str, Any]) -> str:
    mark = (
        '<p class="internal-mark">Internal note (provider and support only)</p>'
        if data.get("is_internal")
        else ""
    )
    text = message_html(data.get("content"))
    files = "".join(
        f"<li>{_file(a.get('url'), a.get('filename'), a.get('size'), ' internal' if a.get('is_internal') else '')}</li>"
        for a in data.get("attachments") or ()
    )
    return f'{mark}<div class="console-comment">{text}</div>' + (f"<ul>{files}</ul>" if files else "")


def _created(data: Mapping[str, Any]) -> str:
    return (
        f"<p>Opened as {_text(humanise.status(data.get('status')))}, "
        f"{_text(humanise.priority(data.get('priority')))} priority, "
        f"{_text(humanise.category(data.get('category')))}: “{_text(data.get('subject'))}”</p>"
    )


def _status(data: Mapping[str, Any]) -> str:
    reason = f" ({_text(humanise.reason(data['reason']))})" if data.get("reason") else ""
    return f"<p>{_text(humanise.status(data.get('from')))} → {_text(humanise.status(data.get('to')))}{reason}</p>"


def _priority(data: Mapping[str, Any]) -> str:
    return f"<p>{_text(humanise.priority(data.get('from')))} → {_text(humanise.priority(data.get('to')))}</p>"


def _assignment(data: Mapping[str, Any]) -> str:
    escalation = " (escalation)" if data.get("escalation") else ""
    reason = f": “{_text(data['reason'])}”" if data.get("reason") else ""
    return (
        f"<p>{_text(assignee(data.get('from')))} → {_text(assignee(data.get('to')))}{escalation}{reason}</p>"
    )


def _rating(data: Mapping[str, Any]) -> str:
    comment = f": “{_text(data['comment'])}”" if data.get("comment") else ""
    return f"<p>Rated {_text(data.get('rating'))} out of 5{comment}</p>"


def _edit(data: Mapping[str, Any]) -> str:
    changes = "".join(
        f"<li>{_text(humanise.field(field))}: “{_text(truncatechars(change.get('from'), 80))}” → "
        f"“{_text(truncatechars(change.get('to'), 80))}”</li>"
        for field, change in (data.get("changes") or {}).items()
    )
    return f"<ul>{changes}</ul>"


def _attachment(data: Mapping[str, Any]) -> str:
    mark = " · internal" if data.get("is_internal") else ""
    return f"<p>{_file(data.get('url'), data.get('filename'), data.get('size'), mark)}</p>"


def _deployment(data: Mapping[str, Any]) -> str:
    return f'<p class="mono">{_text(data.get("deployment_id"))}</p>'


def _sla(kind: str) -> Callable[[Mapping[str, Any]], str]:
    def body(data: Mapping[str, Any]) -> str:
        if kind == "sla_warning":
            elapsed = f"{_text(data['elapsed_percent'])} % elapsed, " if data.get("elapsed_percent") else ""
            when = f"{elapsed}due"
        else:
            when = "was due"
        return (
            f"<p>{_text(humanise.sla_target(data.get('target')))} {when} {timestamp(data.get('due_at'))}</p>"
        )

    return body


def _erased(data: Mapping[str, Any]) -> str:
    basis = (
        "at the end of the retention period"
        if data.get("basis") == "retention"
        else "at the person's request"
    )
    reference = f" (request “{_text(data['reference'])}”)" if data.get("reference") else ""
    events = f": events {_text(', '.join(str(seq) for seq in data['events']))}" if data.get("events") else ""
    return f"<p>Content erased on {timestamp(data.get('erased_at'), relative=False)} {basis}{reference}{events}</p>"


BODIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "new_comment": _comment,
    "ticket_created": _created,
    "status_change": _status,
    "priority_change": _priority,
    "assignment_change": _assignment,
    "satisfaction_rated": _rating,
    "ticket_edited": _edit,
    "attachment_added": _attachment,
    "logs_fetched": _attachment,
    "deployment_linked": _deployment,
    "deployment_unlinked": _deployment,
    "sla_warning": _sla("sla_warning"),
    "sla_breached": _sla("sla_breached"),
    "content_erased": _erased,
}


def _receipt(receipt: EventReceipt | None) -> str:
    if receipt is None:
        return ""
    if receipt.state == "anchored":
        words = (
            f'anchored: tx <span class="mono">{_text(short_hash(receipt.tx_hash))}</span> '
            f"at height {_text(receipt.height)}"
        )
    else:
        tries = (
            f", {receipt.attempts} attempt{'s' if receipt.attempts != 1 else ''}" if receipt.attempts else ""
        )
        words = f"{_text(humanise.chain_state(receipt.state))}{tries}"
    return f'<span class="receipt receipt--{_text(receipt.state)}" title="{_text(receipt.last_error)}">{words}</span>'


def timeline_html(items: Iterable[TimelineItem]) -> SafeString:
    """The timeline's list items, in the page's layout (built here too: a template loop over a long ticket's
    events cost more than building them)."""
    return SafeString(
        "".join(
            f'\n        <li class="{item.css_class}">\n          <p class="console-event__head">{item.head}</p>'
            f"\n          {item.body}\n        </li>\n      "
            for item in items
        )
    )


def timeline_item(event: Mapping[str, Any], receipt: EventReceipt | None) -> TimelineItem:
    kind = str(event.get("type"))
    data: Mapping[str, Any] = event.get("data") or {}
    internal = " is-internal" if data.get("is_internal") else ""
    head = (
        f"<strong>#{_text(event.get('seq'))} {_text(humanise.event_kind(kind))}</strong> · "
        f"{_text(event.get('actor'))} ({_text(humanise.party_kind(event.get('actor_type')))}) · "
        f"{timestamp(event.get('timestamp'))}\n            {_receipt(receipt)}"
    )
    render = BODIES.get(kind)
    body = render(data) if render else f'<p class="mono">{_text(data)}</p>'
    return TimelineItem(
        css_class=f"console-event console-event--{_text(kind)}{internal}",
        head=SafeString(head),
        body=SafeString(body),
    )

"""The escalation queue's rows as the page shows them: every word and time worked out here, once per row,
so that the template only places them.

The queue is the console's landing page and lists up to 200 tickets. With its words computed in the
template (two URL reversals, five filters and four tags a row) the page took three times its API's time
(`bench/console_pages.py`). Markup is escaped with the standard library's `html.escape`, which Django's
`escape` wraps: `format_html` costs several times as much per call, mostly in its lazy-string checks."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from django.urls import reverse
from django.utils.safestring import SafeString

from tickets import humanise
from tickets.selectors.console import QueueTicket
from tickets.selectors.people import Person
from tickets.templatetags.portal import time_element

PAUSED = "clock paused (waiting for the customer)"


@dataclass(frozen=True, slots=True)
class QueueLine:
    id: uuid.UUID
    urgency: str  # breached / at_risk / ok: the row's CSS class
    href: str
    title: str
    status: str
    sla: SafeString
    created: SafeString
    priority: str
    priority_label: str
    provider: str
    customer_href: str
    customer_address: str
    customer: SafeString
    last_activity: SafeString
    assignee: SafeString


def _time(moment: datetime.datetime | None, words: str, kind: str = "") -> SafeString:
    return SafeString("") if moment is None else time_element(moment, words, relative=kind or True)


def _sla(row: QueueTicket, now: datetime.datetime) -> SafeString:
    if row.sla_target:
        lead = f"{humanise.urgency(row.urgency)} · " if row.urgency != "ok" else ""
        due = (
            _time(row.sla_target_due, humanise.sla_due(row.sla_target_due, now), "due")
            if row.sla_target_due
            else PAUSED
        )
        return SafeString(
            f'<span class="sla sla--{escape(row.urgency)}">{escape(lead)}'
            f"{escape(humanise.sla_target(row.sla_target))} {due}</span>"
        )
    if row.urgency == "breached":
        return SafeString('<span class="sla sla--breached">Breached</span>')
    return SafeString('<span class="muted">no target running</span>')


def _customer(address: str, person: Person | None) -> SafeString:
    if person is not None and person.name:
        return SafeString(escape(person.name))
    short = address if len(address) <= 18 else address[:17] + "…"
    return SafeString(f'<span class="mono">{escape(short)}</span>')


def queue_rows_html(lines: list[QueueLine]) -> SafeString:
    """The queue table's rows (`<tr>`), in the page's layout: built here too, as a template loop of fifteen
    variables a row took longer over 200 rows than building the rows' words."""
    return SafeString(
        "".join(
            f'\n      <tr class="queue-row queue-row--{escape(line.urgency)}" data-ticket-id="{escape(str(line.id))}">'
            f'\n        <td><div><a href="{escape(line.href)}">{escape(line.title)}</a></div>'
            f'<div class="muted">{escape(line.status)}</div></td>'
            f"\n        <td>{line.sla}</td>"
            f"\n        <td>{line.created}</td>"
            f'\n        <td><span class="badge badge--priority-{escape(line.priority)}">{escape(line.priority_label)}</span></td>'
            f"\n        <td>{escape(line.provider)}</td>"
            f'\n        <td><a href="{escape(line.customer_href)}" title="{escape(line.customer_address)}">{line.customer}</a></td>'
            f"\n        <td>{line.last_activity}</td>"
            f"\n        <td>{line.assignee}</td>"
            "\n      </tr>\n    "
            for line in lines
        )
    )


def queue_lines(
    rows: list[QueueTicket], people: dict[str, Person], *, now: datetime.datetime
) -> list[QueueLine]:
    """The queue's rows in words, against one `now` (every row's times agree)."""
    # Reversed once each, not once per row: the ids are the only part that differs.
    ticket_href = reverse("admin:tickets_ticket_change", args=["0"]).replace("/0/", "/{}/")
    customer_href = reverse("admin:console-customer", args=["0"]).replace("/0/", "/{}/")
    return [
        QueueLine(
            id=row.id,
            urgency=row.urgency,
            href=ticket_href.format(row.id),
            title=f"{row.display_number} {row.subject}",
            status=humanise.status(row.status),
            sla=_sla(row, now),
            created=_time(row.created_at, humanise.relative(row.created_at, now)),
            priority=row.priority,
            priority_label=humanise.priority(row.priority),
            provider=row.provider_name,
            customer_href=customer_href.format(quote(row.customer_address, safe="")),
            customer_address=row.customer_address,
            customer=_customer(row.customer_address, people.get(row.customer_address)),
            last_activity=_time(
                row.last_activity_at,
                humanise.relative(row.last_activity_at, now) if row.last_activity_at else "",
            ),
            assignee=SafeString(escape(row.assignee_username))
            if row.assignee_username
            else SafeString("<em>unassigned</em>"),
        )
        for row in rows
    ]

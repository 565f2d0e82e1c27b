"""The ticket list's rows (`<tr>`), as the portal's list page and its live row endpoint show them.

Written here rather than by a template included once a row: the list page's rows were most of its time
(`bench/portal_pages.py`: two thirds of it against its API's, for 25 rows), each a dozen variables, four
filters and four tags through Django's template engine. The words and times come from the same template
tags and `humanise` functions the other pages use; text is escaped with the standard library's
`html.escape`, which Django's `escape` wraps."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from tickets import humanise

# The module, not its names: it imports the portal's views, which import this module.
from tickets.templatetags import portal as tags


def _sla_cell(ticket: dict[str, Any]) -> str:
    indicator = tags.sla_indicator(ticket)
    if not indicator:
        return '<span class="muted">—</span>'
    warning = '<span aria-hidden="true">⚠ </span>' if indicator["state"] == "breached" else ""
    words = conditional_escape(tags.sla_words(indicator))
    return f'<span class="sla sla--{escape(str(indicator["state"]))}">{warning}{words}</span>'


def ticket_row_html(ticket: dict[str, Any]) -> SafeString:
    """One row: a ticket as `TicketOutput` gives it."""
    ticket_id = escape(str(ticket["id"]))
    number = escape(str(ticket["number"]))
    href = escape(reverse("portal-ticket-detail", args=[ticket["number"]]))
    escalated = ' · <span class="badge badge--escalated">Escalated</span>' if ticket["escalated"] else ""
    snippet = (ticket.get("match") or {}).get("snippet")
    snippet_html = f'<span class="tickets__snippet">{snippet}</span>' if snippet else ""  # escaped by search
    status, priority, chain_state = (
        str(ticket["status"]),
        str(ticket["priority"]),
        str(ticket["chain"]["state"]),
    )
    return mark_safe(  # noqa: S308 - every value is escaped above or below, the snippet by the search service
        f'\n<tr id="ticket-{ticket_id}" data-ticket-id="{ticket_id}">\n'
        '  <td class="tickets__title">\n'
        f'    <a href="{href}"><span class="ticket-number">{number}</span> {escape(str(ticket["subject"]))}</a>\n'
        f'    <span class="tickets__meta">{escape(humanise.category(ticket["category"]))} · '
        f"{escape(str(ticket['provider_name']))}{escalated}</span>\n"
        f"    {snippet_html}\n"
        "  </td>\n"
        f'  <td data-label="Status"><span class="badge badge--status-{escape(status)}">'
        f"{escape(humanise.status(status))}</span></td>\n"
        f'  <td data-label="Priority"><span class="badge badge--priority-{escape(priority)}">'
        f"{escape(humanise.priority(priority))}</span></td>\n"
        f'  <td data-label="SLA">{_sla_cell(ticket)}</td>\n'
        f'  <td data-label="Deployment">{tags.deployment(ticket["deployment_name"], ticket["deployment_id"])}</td>\n'
        f'  <td data-label="Updated">{conditional_escape(tags.timestamp(ticket["updated_at"]))}</td>\n'
        f'  <td data-label="Chain"><span class="badge badge--chain-{escape(chain_state)}">'
        f"{escape(humanise.chain_state(chain_state))}</span></td>\n"
        "</tr>\n"
    )


def ticket_rows_html(tickets: Iterable[dict[str, Any]]) -> SafeString:
    return mark_safe("".join(ticket_row_html(ticket) for ticket in tickets))  # noqa: S308 - rows as above

"""Template helpers of the portal's and the console's pages: codes in words and times in words, all from
`tickets.humanise` (the emails use it too), computed from what the API or a selector returned (no queries
here)."""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable
from html import escape as escape_text
from typing import Any
from urllib.parse import quote

from django import template
from django.forms import BoundField
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.html import conditional_escape, escape, format_html
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString, mark_safe

from core.formats import parse_iso_timestamp
from tickets import humanise
from tickets.models import Ticket
from tickets.portal.files import viewer_kind

register = template.Library()

register.filter("status_label", humanise.status)
register.filter("status_phrase", humanise.status_phrase)
register.filter("priority_label", humanise.priority)
register.filter("category_label", humanise.category)
register.filter("chain_label", humanise.chain_state)
register.filter("actor_label", humanise.party_kind)
register.filter("event_label", humanise.event_kind)
register.filter("reason_label", humanise.reason)
register.filter("field_label", humanise.field)
register.filter("sla_target_label", humanise.sla_target)
register.filter("urgency_label", humanise.urgency)
register.filter("queue_label", humanise.assignee_kind)
register.filter("file_size", humanise.file_size)
register.filter("file_kind", viewer_kind)
register.filter("short_lease", humanise.short_lease_id)


@register.simple_tag
def deployment(name: object, lease_id: object, copy: bool = False) -> SafeString:
    """A deployment as people read it: its name first, then its lease ID shortened (the full ID on hover, for
    screen readers, and in the copy button when `copy`). Built here, not by an included template: the ticket
    list has one a row, and an include costs as much as the rest of the row."""
    lease = escape_text(str(lease_id))
    named = f'<span class="deployment__name">{escape_text(str(name))}</span> ' if name else ""
    button = (
        f' <button class="copy-button" type="button" data-copy="{lease}" hidden>Copy<span class="visually-hidden">'
        f" lease ID of {escape_text(str(name or 'this deployment'))}</span></button>"
        if copy
        else ""
    )
    return mark_safe(  # noqa: S308 - every value above is escaped
        f'<span class="deployment">{named}<span class="deployment__lease mono" title="{lease}"><span '
        f'aria-hidden="true">{escape_text(humanise.short_lease_id(lease_id))}</span><span class="visually-hidden">'
        f"lease {lease}</span></span>{button}</span>\n"
    )


# A web address in already escaped text: http(s) only, up to a space or an escaped quote or bracket.
_ESCAPED_URL = re.compile(r"https?://(?:(?!&quot;|&#x27;|&lt;|&gt;)[^\s<>\"'])+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}*"


def _link(match: re.Match[str]) -> str:
    url, trail = match.group(0), ""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break  # a bracket that belongs to the address (Wikipedia-style)
        url, trail = url[:-1], url[-1] + trail
    return f'<a href="{url}" rel="nofollow noopener">{url}</a>{trail}'


@register.filter(is_safe=True)
def message_html(text: object) -> SafeString:
    """A person's message as HTML: escaped, web addresses linked, line breaks kept. What `urlize|linebreaksbr`
    did for the thread, at a fraction of its cost (the ticket page renders every message; only http(s)
    addresses are linked, never `javascript:` or bare domains)."""
    escaped = escape(str(text or ""))
    linked = _ESCAPED_URL.sub(_link, escaped)
    return mark_safe(linked.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>"))  # noqa: S308


@register.filter
def assignee(value: dict[str, Any] | None) -> str:
    """`{"kind", "name"}` of an assignment event, in words: "alice (VirtEngine support)"."""
    if not value:
        return "nobody"
    return humanise.assignee(value.get("kind"), value.get("name"))


@register.filter
def duration(value: datetime.timedelta | None) -> str:
    """A measured span (a median response time) in words: "15 ms", "3 h 20 min"; "—" for none."""
    return "—" if value is None else humanise.duration(value)


@register.filter
def exact_time(value: str | datetime.datetime | None) -> str:
    """The exact time in UTC, as every hover title shows it: "6 Dec 2026, 14:05 UTC" (emails)."""
    moment = _moment(value)
    return "" if moment is None else humanise.exact_time(moment)


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


def time_element(moment: datetime.datetime, words: str, *, relative: bool | str = True) -> SafeString:
    """The `<time>` of every time the pages show: the exact UTC time on hover, `words` inside, and with
    `relative` a `data-relative` marker (valued "due" for an SLA due time) by which the page's script keeps the
    words current. Escaped with the standard library's `html.escape`, which Django's `escape` wraps: long pages
    build hundreds of these, and `format_html` costs several times as much per call."""
    if relative is False:
        marker = ""
    else:
        marker = " data-relative" if relative is True else f' data-relative="{escape_text(relative)}"'
    return SafeString(
        f'<time datetime="{escape_text(humanise.iso_datetime(moment))}" title="{escape_text(humanise.exact_time(moment))}"'
        f"{marker}>{escape_text(words)}</time>"
    )


@register.simple_tag
def timestamp(value: str | datetime.datetime | None, *, relative: bool = True) -> SafeString | str:
    """`<time>` with the exact UTC time on hover and, with `relative`, how long ago (or until) it is in
    words; the page's script keeps the words current and shows the exact time in the reader's zone."""
    moment = _moment(value)
    if moment is None:
        return ""
    words = humanise.relative(moment, timezone.now()) if relative else humanise.exact_time(moment)
    return time_element(moment, words, relative=relative)


@register.simple_tag
def sla_due(value: str | datetime.datetime | None) -> SafeString | str:
    """An SLA due time in the words of every page ("due in 3 h 20 min", "overdue by 20 min"), the exact
    time on hover; the page's script keeps the words current by the same rule."""
    moment = _moment(value)
    if moment is None:
        return ""
    return time_element(moment, humanise.sla_due(moment, timezone.now()), relative="due")


AT_RISK_SECONDS = 3600


@register.simple_tag
def select_options(field: BoundField) -> SafeString:
    """The `<option>`s of a filter's `<select>` (those its widget offers), the chosen one `selected` (none
    when the value is not offered: the browser then shows the first). Not a template loop: the
    deployment filter lists every deployment of the party (a hundred for a provider in the bench), and
    rendering them node by node was a third of the ticket list page's time. Escaped with `html.escape`
    (which Django's `escape` wraps; `format_html` costs several times as much per value)."""
    current = field.value()
    if current is None:
        current = ""
    return mark_safe(  # noqa: S308 - every value and label is escaped
        "".join(
            f'<option value="{escape_text(str(value))}"{" selected" if value == current else ""}>'
            f"{escape_text(str(label))}</option>"
            for value, label in field.field.widget.choices  # type: ignore[attr-defined]
        )
    )


@register.simple_tag
def sla_indicator(ticket: dict[str, Any]) -> dict[str, str] | None:
    """The target that matters now (first response until it is decided, then resolution) and where the
    ticket stands against it, from the API's `sla` object: `{"state": ok|at_risk|breached|paused, "label",
    "due"}`, or None when no target runs. The page writes `label` and then, when `due` is set, the due
    time in the words of `sla_due` ("First response due in 3 h 20 min")."""
    if ticket["status"] in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
        return None
    sla = ticket.get("sla") or {}
    first, resolution = sla.get("first_response") or {}, sla.get("resolution") or {}
    code, target = (
        ("first_response", first) if first and first.get("met") is None else ("resolution", resolution)
    )
    if not target:
        return None
    name = humanise.sla_target(code)
    due = target.get("due_at") or ""
    if target.get("breached") or target.get("met") is False:
        return {"state": "breached", "label": name if due else f"{name} target breached", "due": due}
    if target.get("paused"):
        return {"state": "paused", "label": f"{name} clock paused (waiting for the customer)", "due": ""}
    remaining = target.get("seconds_remaining")
    if remaining is None or not due:
        return None
    state = "at_risk" if remaining <= AT_RISK_SECONDS else "ok"
    return {"state": state, "label": name, "due": due}


@register.simple_tag
def sla_words(indicator: dict[str, str] | None) -> SafeString | str:
    """An `sla_indicator` in words: "First response due in 3 h 20 min", "Resolution overdue by 20 min",
    "Resolution clock paused (waiting for the customer)"; a target breached before its (since moved) due
    time says so: "Resolution target breached, due in 2 h"."""
    if not indicator:
        return ""
    due = _moment(indicator.get("due"))
    if due is None:
        return indicator["label"]
    label = indicator["label"]
    if indicator["state"] == "breached" and due > timezone.now():
        label = f"{label} target breached,"
    return format_html("{} {}", label, sla_due(due))


# The ticket list's rows (<tr>), for the list page and its live row endpoint. Written here rather than by a
# template included once a row: the rows were most of the list page's time (`bench/portal_pages.py`), each a
# dozen variables, four filters and four tags through the template engine. Text is escaped with the standard
# library's `html.escape`, which Django's `escape` wraps.


def _sla_cell(ticket: dict[str, Any]) -> str:
    indicator = sla_indicator(ticket)
    if not indicator:
        return '<span class="muted">—</span>'
    warning = '<span aria-hidden="true">⚠ </span>' if indicator["state"] == "breached" else ""
    words = conditional_escape(sla_words(indicator))
    return f'<span class="sla sla--{escape_text(str(indicator["state"]))}">{warning}{words}</span>'


_REFERENCE_MARKER = "REFERENCE"


@functools.lru_cache(maxsize=16)
def _ticket_address_around(_script_prefix: str, urlconf: str | None) -> tuple[str, str]:
    """What a ticket page's address has before and after the reference, for the current script prefix
    (which `reverse` reads; the argument keys the cache by it)."""
    before, _, after = reverse("portal-ticket-detail", args=[_REFERENCE_MARKER], urlconf=urlconf).partition(
        _REFERENCE_MARKER
    )
    return before, after


def ticket_address(reference: str) -> str:
    """`reverse("portal-ticket-detail", args=[reference])` for a reference (its characters quoted as
    `reverse` quotes them), without resolving the pattern again for each of a page's rows."""
    before, after = _ticket_address_around(get_script_prefix(), get_urlconf())
    return f"{before}{quote(reference, safe=RFC3986_SUBDELIMS + '/~:@')}{after}"


def ticket_row_html(ticket: dict[str, Any]) -> SafeString:
    """One row: a ticket as `TicketOutput` gives it."""
    ticket_id = escape_text(str(ticket["id"]))
    number = escape_text(str(ticket["number"]))
    href = escape_text(ticket_address(str(ticket["number"])))
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
        f'    <a href="{href}"><span class="ticket-number">{number}</span> {escape_text(str(ticket["subject"]))}</a>\n'
        f'    <span class="tickets__meta">{escape_text(humanise.category(ticket["category"]))} · '
        f"{escape_text(str(ticket['provider_name']))}{escalated}</span>\n"
        f"    {snippet_html}\n"
        "  </td>\n"
        f'  <td data-label="Status"><span class="badge badge--status-{escape_text(status)}">'
        f"{escape_text(humanise.status(status))}</span></td>\n"
        f'  <td data-label="Priority"><span class="badge badge--priority-{escape_text(priority)}">'
        f"{escape_text(humanise.priority(priority))}</span></td>\n"
        f'  <td data-label="SLA">{_sla_cell(ticket)}</td>\n'
        f'  <td data-label="Deployment">{deployment(ticket["deployment_name"], ticket["deployment_id"])}</td>\n'
        f'  <td data-label="Updated">{conditional_escape(timestamp(ticket["updated_at"]))}</td>\n'
        f'  <td data-label="Chain"><span class="badge badge--chain-{escape_text(chain_state)}">'
        f"{escape_text(humanise.chain_state(chain_state))}</span></td>\n"
        "</tr>\n"
    )


@register.simple_tag
def ticket_rows(tickets: Iterable[dict[str, Any]]) -> SafeString:
    return mark_safe("".join(ticket_row_html(ticket) for ticket in tickets))  # noqa: S308 - rows as above


register.simple_tag(ticket_row_html, name="ticket_row")


# A ticket's thread: each reply and internal note, for the ticket page, its live refresh and the one-comment
# endpoint (`portal/_comment.html`). Written here rather than by a template included once a comment: a thread
# of 30 replies was an eighth of the ticket page's time. The markup is what that template wrote; a reply's
# files are still written by `portal/_attachments.html` (one template for them, here and in the files card).


def comment_html(comment: dict[str, Any], reference: str) -> SafeString:
    """One comment as `CommentOutput` gives it (as the reader may see it), with the line breaks around it
    that the template's include had."""
    author = escape_text(str(comment["author"]))
    kind = escape_text(str(comment["author_type"]))
    internal = comment["is_internal"]
    banner = (
        '<p class="comment__internal">Internal note — visible to the provider and VirtEngine support only</p>'
        if internal
        else ""
    )
    files = (
        render_to_string(
            "portal/_attachments.html", {"attachments": comment["attachments"], "reference": reference}
        )
        if comment["attachments"]
        else ""
    )
    return mark_safe(  # noqa: S308 - every value is escaped above or below; the files by their template
        f'\n<article class="comment comment--{kind}{" comment--internal" if internal else ""}" '
        f'id="comment-{escape_text(str(comment["id"]))}" aria-label="{"Internal note" if internal else "Reply"} '
        f'by {author}">\n'
        f"  {banner}\n"
        f'  <header class="comment__head"><span class="comment__author">{author}</span> <span class="role '
        f'role--{kind}">{escape_text(humanise.party_kind(comment["author_type"]))}</span> '
        f"{conditional_escape(timestamp(comment['created_at']))}</header>\n"
        f'  <div class="comment__body">{message_html(comment["content"])}</div>\n'
        f"  {files}\n"
        "</article>\n"
    )


register.simple_tag(comment_html, name="thread_comment")


@register.simple_tag
def thread_comments(comments: list[dict[str, Any]], reference: str) -> SafeString:
    """The thread after the opening message, oldest first; a line saying so when nobody has replied."""
    if not comments:
        return mark_safe('<p class="muted thread__empty">No replies yet.</p>')
    return mark_safe("".join(comment_html(comment, reference) for comment in comments))  # noqa: S308 - as above

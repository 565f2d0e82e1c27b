"""Words for the codes and times people read: the one humaniser of the console, the portal and the emails.

The API, sockets, webhooks and the chain keep the codes (`waiting_customer`, `status_change`): they are the
wire contract. Everything a person reads turns a code into words here, so a status, an event kind, a reason
or a time reads the same on every page and in every message. A code this module does not know still reads
as words (its underscores become spaces): no `snake_case` reaches a reader.

Times follow one rule, `duration`'s, on every face; the portal's script (`static/portal/humanise.js`)
implements the same rule for the times it keeps current, and a test holds the two to the same table.

Pure: no queries, no request, no "now" of its own (callers pass it).
"""

from __future__ import annotations

import datetime
import math
from typing import Literal

from tickets.models import Ticket, TicketEvent

Kind = TicketEvent.Kind

# -- Codes ------------------------------------------------------------------------------------------------

# Status, priority and category: the models' own labels ("Waiting for customer"), one source.
STATUSES: dict[str, str] = {str(value): str(label) for value, label in Ticket.Status.choices}
PRIORITIES: dict[str, str] = {str(value): str(label) for value, label in Ticket.Priority.choices}
CATEGORIES: dict[str, str] = {str(value): str(label) for value, label in Ticket.Category.choices}

# What happened, as a heading: one per event kind.
EVENT_KINDS: dict[str, str] = {
    Kind.TICKET_CREATED: "Ticket opened",
    Kind.NEW_COMMENT: "New message",
    Kind.STATUS_CHANGE: "Status changed",
    Kind.PRIORITY_CHANGE: "Priority changed",
    Kind.ASSIGNMENT_CHANGE: "Assignment changed",
    Kind.ATTACHMENT_ADDED: "File added",
    Kind.DEPLOYMENT_LINKED: "Deployment linked",
    Kind.DEPLOYMENT_UNLINKED: "Deployment unlinked",
    Kind.SLA_WARNING: "SLA warning",
    Kind.SLA_BREACHED: "SLA breached",
    Kind.LOGS_FETCHED: "Deployment logs fetched",
    Kind.TICKET_EDITED: "Ticket edited",
    Kind.SATISFACTION_RATED: "Satisfaction rated",
    Kind.CONTENT_ERASED: "Content erased",
}

# Who acted or wrote (`core.parties.PartyKind`, the presenter's `actor_type` and `author_type`).
PARTY_KINDS: dict[str, str] = {
    "customer": "Customer",
    "provider": "Provider",
    "support": "VirtEngine support",
    "system": "System",
}
# The same parties inside a sentence ("… cannot be moved … by the provider").
PARTY_PHRASES: dict[str, str] = {
    "customer": "the customer",
    "provider": "the provider",
    "support": "VirtEngine support",
    "system": "the system",
}

# Whose queue a ticket is in (`Ticket.AssigneeKind`).
ASSIGNEE_KINDS: dict[str, str] = {"provider": "the provider", "support": "VirtEngine support"}

# The chain's anchoring state (`chain.models.OutboxEntry.State`) in the portal's vocabulary.
CHAIN_STATES: dict[str, str] = {"pending": "Queued", "anchored": "Confirmed", "failed": "Failed"}

# The two SLA targets (`tickets.services.sla.TARGET_NAMES`, the sweep's `target`).
SLA_TARGETS: dict[str, str] = {"first_response": "First response", "resolution": "Resolution"}

# Where a ticket stands against its SLA (`tickets.selectors.console.URGENCY_LABELS`, the portal's states).
URGENCIES: dict[str, str] = {
    "breached": "Breached",
    "at_risk": "At risk",
    "ok": "On track",
    "paused": "Paused",
}

# Reasons the system writes as codes (a status change after a customer's reply). People's reasons are
# their own words and pass through unchanged.
REASONS: dict[str, str] = {"customer_reply": "The customer replied"}

# Fields of a ticket an edit can change (`tickets.presenter.EDITABLE_FIELDS`).
FIELDS: dict[str, str] = {"subject": "Subject", "description": "Description", "category": "Category"}


def words(code: object) -> str:
    """A code nobody gave words to yet, as words: `sla_breach` → "Sla breach". A fallback only: every code
    the app writes has its words in a table above (the tests check each enum)."""
    text = str(code or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _lookup(table: dict[str, str], code: object) -> str:
    return table.get(str(code), "") or words(code)


def status(code: object) -> str:
    """`waiting_customer` → "Waiting for customer"."""
    return _lookup(STATUSES, code)


def status_phrase(code: object) -> str:
    """A status inside a sentence: "Moved the ticket to waiting for customer."."""
    return status(code).lower()


def priority(code: object) -> str:
    return _lookup(PRIORITIES, code)


def priority_phrase(code: object) -> str:
    return priority(code).lower()


def category(code: object) -> str:
    return _lookup(CATEGORIES, code)


def category_phrase(code: object) -> str:
    return category(code).lower()


def event_kind(code: object) -> str:
    """`status_change` → "Status changed"."""
    return _lookup(EVENT_KINDS, code)


def party_kind(code: object) -> str:
    """`support` → "VirtEngine support" (a role badge: who wrote or acted)."""
    return _lookup(PARTY_KINDS, code)


def party_phrase(code: object) -> str:
    """`provider` → "the provider" (inside a sentence)."""
    return PARTY_PHRASES.get(str(code), "") or words(code).lower()


def assignee_kind(code: object) -> str:
    """`support` → "VirtEngine support": whose queue."""
    return ASSIGNEE_KINDS.get(str(code), "") or words(code).lower()


def assignee(kind: object, name: object = None) -> str:
    """Who has a ticket: "alice (VirtEngine support)", or the queue alone when nobody took it. The API
    gives the queue's own name (`provider`, `support`) as `assigned_to` when nobody took it."""
    queue = assignee_kind(kind)
    if not name or str(name) == str(kind):
        return queue
    return f"{name} ({queue})"


def chain_state(code: object) -> str:
    return _lookup(CHAIN_STATES, code)


def sla_target(code: object) -> str:
    """`first_response` → "First response"."""
    return _lookup(SLA_TARGETS, code)


def sla_target_phrase(code: object) -> str:
    return sla_target(code).lower()


def urgency(code: object) -> str:
    return _lookup(URGENCIES, code)


def reason(text: object) -> str:
    """A reason recorded on an event: a system code in words, a person's reason as they wrote it."""
    value = str(text or "")
    return REASONS.get(value, value)


def field(code: object) -> str:
    """`description` → "Description": a field an edit changed."""
    return _lookup(FIELDS, code)


# -- Times ------------------------------------------------------------------------------------------------

Resolution = Literal["ms", "s", "min"]

_MICROSECOND = datetime.timedelta(microseconds=1)
# (singular, plural, size in microseconds), largest first.
_UNITS: tuple[tuple[str, str, int], ...] = (
    ("day", "days", 86_400_000_000),
    ("h", "h", 3_600_000_000),
    ("min", "min", 60_000_000),
    ("s", "s", 1_000_000),
    ("ms", "ms", 1_000),
)
_UNDER: dict[str, str] = {"ms": "less than 1 ms", "s": "less than a second", "min": "less than a minute"}
# The units `duration` counts down to, by resolution (a queue page words 600 times).
_UNITS_TO: dict[str, tuple[tuple[str, str, int], ...]] = {
    singular: _UNITS[: index + 1] for index, (singular, _plural, _size) in enumerate(_UNITS)
}


# A number and its unit never part at a line break ("23 h" on a phone's narrow column, not "23 / h").
NBSP = "\u00a0"


def _unit(count: int, singular: str, plural: str) -> str:
    return f"{count}{NBSP}{singular if count == 1 else plural}"


def duration(span: datetime.timedelta, *, resolution: Resolution = "ms") -> str:
    """A span of time in words, by THE rounding rule of every time a person reads here:

    **Round down, to the two largest units.** The span is cut (never rounded up) to the largest unit it
    holds and the next smaller one, and the smaller one is left out when it is zero: 90 061 s is
    "1 day 1 h", 12 000 s "3 h 20 min", 240 s "4 min", 0.0158 s "15 ms", 2 days exactly "2 days". Units:
    days, h, min, s, ms; nothing below `resolution` is counted, and a span shorter than it reads "less
    than a minute" (or a second, or 1 ms). The sign is ignored: `relative` and `sla_due` say which way.
    A number and its unit are joined by a no-break space.

    Rounding down means a deadline never reads further away than it is, and a count never jumps up
    before it has happened; two units keep the error under a minute for anything due within a day.
    """
    total = abs(span) // _MICROSECOND
    units = _UNITS_TO[resolution]
    last = len(units) - 1
    for index, (singular, plural, size) in enumerate(units):
        if total < size:
            continue
        text = _unit(total // size, singular, plural)
        if index < last:
            smaller, smaller_plural, smaller_size = _UNITS[index + 1]
            rest = (total % size) // smaller_size
            if rest:
                text += f" {_unit(rest, smaller, smaller_plural)}"
        return text
    return _UNDER[resolution]


def relative(moment: datetime.datetime, now: datetime.datetime) -> str:
    """How long ago or until `moment`, at minute resolution: "3 h 20 min ago", "in 2 days", "just now"."""
    delta = moment - now
    if abs(delta) < datetime.timedelta(minutes=1):
        return "in less than a minute" if delta > datetime.timedelta(0) else "just now"
    span = duration(delta, resolution="min")
    return f"in {span}" if delta > datetime.timedelta(0) else f"{span} ago"


def sla_due(due: datetime.datetime, now: datetime.datetime) -> str:
    """An SLA due time against now, the same words on every page: "due in 3 h 20 min", "overdue by
    20 min" (at the due time itself a target is overdue, as `tickets.sla.target_status` counts it)."""
    delta = due - now
    if delta > datetime.timedelta(0):
        return f"due in {duration(delta, resolution='min')}"
    return f"overdue by {duration(delta, resolution='min')}"


def short_lease_id(lease_id: object) -> str:
    """A lease ID (`owner/dseq/gseq/oseq`) short enough for a line: the owner's address cut to its start
    and end ("ve1w75…p7h0/1234/1/1"); the full ID stays in the page for copying and hovering."""
    text = str(lease_id or "")
    owner, slash, rest = text.partition("/")
    if len(owner) > 14:
        owner = f"{owner[:6]}…{owner[-4:]}"
    return f"{owner}{slash}{rest}"


# Sizes: bytes, then binary kilo-, mega- and gigabytes written KB, MB, GB (as people read them).
_SIZE_UNITS = ("KB", "MB", "GB")


def file_size(size: object) -> str:
    """A file's size, the one format of every page, the uploader's script (`fileSize` in humanise.js) and
    the emails: "112 bytes", "1 byte", "1.5 KB", "12 KB", "3.2 MB". Rounded down like every other number
    here: one decimal under 10 of a unit, none from 10 on. A number and its unit are joined by a no-break
    space."""
    try:
        count = int(size)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ""
    if count < 1024:
        return _unit(count, "byte", "bytes")
    value = float(count)
    for unit in _SIZE_UNITS:
        value /= 1024
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            break
    shown = f"{math.floor(value * 10) / 10:.1f}" if value < 10 else str(math.floor(value))
    return f"{shown}{NBSP}{unit}"


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def exact_time(moment: datetime.datetime) -> str:
    """The exact time, in UTC, for a hover title and an email: "6 Dec 2026, 14:05 UTC" (the English month,
    whatever the process's locale; written out rather than by `strftime`, for the pages that show hundreds)."""
    utc = moment.astimezone(datetime.UTC)
    return f"{utc.day} {_MONTHS[utc.month]} {utc.year}, {utc.hour:02d}:{utc.minute:02d} UTC"


def iso_datetime(moment: datetime.datetime) -> str:
    """A `<time datetime>` value (UTC, `Z`)."""
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")

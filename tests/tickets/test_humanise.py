"""The humaniser (tickets/humanise.py): every code the app writes has words and no code leaks, and the one
rounding rule of times, table-driven, held to the same table in the page's script (static/portal/humanise.js)."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chain.models import OutboxEntry
from core.parties import PartyKind
from tickets import humanise, presenter, states
from tickets.models import Ticket, TicketEvent
from tickets.selectors.console import URGENCY_LABELS
from tickets.services.sla import TARGET_NAMES

SCRIPT = Path(__file__).resolve().parents[2] / "tickets" / "static" / "portal" / "humanise.js"
NOW = datetime.datetime(2026, 12, 6, 14, 5, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)

# Each family of codes, every value it can take, and its humaniser.
FAMILIES = [
    ("status", Ticket.Status.values, humanise.status),
    ("status in a sentence", Ticket.Status.values, humanise.status_phrase),
    ("state machine status", [s.value for s in states.Status], humanise.status),
    ("priority", Ticket.Priority.values, humanise.priority),
    ("priority in a sentence", Ticket.Priority.values, humanise.priority_phrase),
    ("category", Ticket.Category.values, humanise.category),
    ("event kind", TicketEvent.Kind.values, humanise.event_kind),
    ("presented event kind", list(presenter.SHAPES), humanise.event_kind),
    ("party", [k.value for k in PartyKind], humanise.party_kind),
    ("party in a sentence", [k.value for k in PartyKind], humanise.party_phrase),
    ("role", [r.value for r in states.Role], humanise.party_phrase),
    ("assignee queue", Ticket.AssigneeKind.values, humanise.assignee_kind),
    ("chain state", OutboxEntry.State.values, humanise.chain_state),
    ("SLA target", list(TARGET_NAMES), humanise.sla_target),
    ("SLA target in a sentence", list(TARGET_NAMES), humanise.sla_target_phrase),
    ("urgency", [*URGENCY_LABELS, "paused"], humanise.urgency),
    ("reason code", list(humanise.REASONS), humanise.reason),
    ("edited field", list(presenter.EDITABLE_FIELDS), humanise.field),
]


@pytest.mark.parametrize(("family", "codes", "words"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_code_has_its_own_words_and_none_leaks(family: str, codes: list[str], words: object) -> None:
    assert codes, family
    tables = (
        humanise.STATUSES,
        humanise.PRIORITIES,
        humanise.CATEGORIES,
        humanise.EVENT_KINDS,
        humanise.PARTY_KINDS,
        humanise.PARTY_PHRASES,
        humanise.ASSIGNEE_KINDS,
        humanise.CHAIN_STATES,
        humanise.SLA_TARGETS,
        humanise.URGENCIES,
        humanise.REASONS,
        humanise.FIELDS,
    )
    for code in codes:
        text = words(code)  # type: ignore[operator]
        assert text, (family, code)
        assert "_" not in text, (family, code, text)
        # Written in a table, not made up by the fallback.
        assert any(code in table for table in tables), (family, code)


def test_a_code_nobody_gave_words_still_reads_as_words() -> None:
    assert humanise.status("on_hold") == "On hold"
    assert humanise.event_kind("macro_applied") == "Macro applied"
    assert humanise.party_phrase("bot_user") == "bot user"
    assert humanise.words(None) == ""


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (humanise.status("in_progress"), "In progress"),
        (humanise.status("waiting_customer"), "Waiting for customer"),
        (humanise.status_phrase("waiting_customer"), "waiting for customer"),
        (humanise.event_kind("new_comment"), "New message"),
        (humanise.event_kind("status_change"), "Status changed"),
        (humanise.party_phrase("provider"), "the provider"),
        (humanise.party_kind("support"), "VirtEngine support"),
        (humanise.assignee("support", "alice"), "alice (VirtEngine support)"),
        (humanise.assignee("provider", "provider"), "the provider"),
        (humanise.assignee("provider", None), "the provider"),
        (humanise.chain_state("anchored"), "Confirmed"),
        (humanise.sla_target("first_response"), "First response"),
        (humanise.reason("customer_reply"), "The customer replied"),
    ],
)
def test_words_of_codes(code: str, words: str) -> None:
    assert code == words


def test_a_persons_reason_is_kept_as_written() -> None:
    assert humanise.reason("see error_code 42") == "see error_code 42"
    assert humanise.reason("") == ""
    assert humanise.reason(None) == ""


# -- The rounding rule ----------------------------------------------------------------------------------


def spaced(words: str) -> str:
    """The words with their no-break spaces (between a number and its unit) as plain ones."""
    return words.replace(humanise.NBSP, " ")


DURATIONS = [
    # span, words at millisecond resolution (a measured span), words at minute resolution (a time)
    (datetime.timedelta(0), "less than 1 ms", "less than a minute"),
    (datetime.timedelta(microseconds=999), "less than 1 ms", "less than a minute"),
    (datetime.timedelta(microseconds=15_812), "15 ms", "less than a minute"),  # was "0:00:00.015812"
    (datetime.timedelta(milliseconds=1_999), "1 s 999 ms", "less than a minute"),
    (59 * SECOND + datetime.timedelta(microseconds=999_999), "59 s 999 ms", "less than a minute"),
    (MINUTE, "1 min", "1 min"),
    (4 * MINUTE, "4 min", "4 min"),
    (4 * MINUTE + 3 * SECOND, "4 min 3 s", "4 min"),
    (59 * MINUTE + 59 * SECOND, "59 min 59 s", "59 min"),
    (HOUR, "1 h", "1 h"),
    (3 * HOUR + 20 * MINUTE, "3 h 20 min", "3 h 20 min"),
    (3 * HOUR + 59 * MINUTE + 59 * SECOND, "3 h 59 min", "3 h 59 min"),  # down, never up to "4 h"
    (23 * HOUR + 59 * MINUTE + 59 * SECOND, "23 h 59 min", "23 h 59 min"),
    (DAY, "1 day", "1 day"),
    (DAY + HOUR + MINUTE + SECOND, "1 day 1 h", "1 day 1 h"),
    (2 * DAY, "2 days", "2 days"),
    (2 * DAY + 59 * MINUTE, "2 days", "2 days"),
    (45 * DAY + 3 * HOUR, "45 days 3 h", "45 days 3 h"),
    (-(3 * HOUR + 20 * MINUTE), "3 h 20 min", "3 h 20 min"),  # the sign is the caller's to say
]


@pytest.mark.parametrize(("span", "measured", "moment"), DURATIONS, ids=[str(d[0]) for d in DURATIONS])
def test_the_rounding_rule(span: datetime.timedelta, measured: str, moment: str) -> None:
    assert spaced(humanise.duration(span)) == measured
    assert spaced(humanise.duration(span, resolution="min")) == moment


SLA_CASES = [
    # due - now, sla_due, relative
    (3 * HOUR + 20 * MINUTE + 59 * SECOND, "due in 3 h 20 min", "in 3 h 20 min"),
    (3 * HOUR + 59 * MINUTE, "due in 3 h 59 min", "in 3 h 59 min"),
    (59 * SECOND, "due in less than a minute", "in less than a minute"),
    (SECOND, "due in less than a minute", "in less than a minute"),
    (datetime.timedelta(0), "overdue by less than a minute", "just now"),
    (-59 * SECOND, "overdue by less than a minute", "just now"),
    (-MINUTE, "overdue by 1 min", "1 min ago"),
    (-(20 * MINUTE + 30 * SECOND), "overdue by 20 min", "20 min ago"),
    (-(DAY + 5 * HOUR), "overdue by 1 day 5 h", "1 day 5 h ago"),
    (2 * DAY + 7 * HOUR, "due in 2 days 7 h", "in 2 days 7 h"),
]


@pytest.mark.parametrize(("delta", "due", "relative"), SLA_CASES, ids=[str(c[0]) for c in SLA_CASES])
def test_sla_and_relative_words(delta: datetime.timedelta, due: str, relative: str) -> None:
    assert spaced(humanise.sla_due(NOW + delta, NOW)) == due
    assert spaced(humanise.relative(NOW + delta, NOW)) == relative


def test_a_number_and_its_unit_stay_on_one_line() -> None:
    assert humanise.sla_due(NOW + 23 * HOUR + 59 * MINUTE, NOW) == "due in 23\u00a0h 59\u00a0min"
    assert humanise.duration(2 * DAY) == "2\u00a0days"


def test_the_exact_time_for_the_hover() -> None:
    assert humanise.exact_time(NOW) == "6 Dec 2026, 14:05 UTC"
    berlin = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    assert humanise.exact_time(berlin) == "6 Dec 2026, 14:05 UTC"
    assert humanise.iso_datetime(berlin) == "2026-12-06T14:05:00Z"


@pytest.mark.skipif(shutil.which("node") is None, reason="the page's script is checked with Node.js")
def test_the_pages_script_follows_the_same_rule() -> None:
    """The browser rewrites every <time> as it ages: its words must be the server's at the same instant."""
    deltas = [int(c[0] / datetime.timedelta(milliseconds=1)) for c in SLA_CASES] + [
        int(d[0] / datetime.timedelta(milliseconds=1)) for d in DURATIONS
    ]
    program = f"""
        import {{ duration, relative, slaDue }} from {json.dumps(SCRIPT.as_uri())};
        const now = Date.UTC(2026, 11, 6, 14, 5);
        const deltas = {json.dumps(deltas)};
        console.log(JSON.stringify(deltas.map((delta) => [
          duration(delta), relative(new Date(now + delta), now), slaDue(new Date(now + delta), now),
        ])));
    """
    result = subprocess.run(
        ["node", "--input-type=module", "-e", program], capture_output=True, text=True, check=True, timeout=30
    )
    script = json.loads(result.stdout)
    server = [
        [
            humanise.duration(datetime.timedelta(milliseconds=delta), resolution="min"),
            humanise.relative(NOW + datetime.timedelta(milliseconds=delta), NOW),
            humanise.sla_due(NOW + datetime.timedelta(milliseconds=delta), NOW),
        ]
        for delta in deltas
    ]
    assert script == server


SIZES = [
    (0, "0 bytes"),
    (1, "1 byte"),
    (112, "112 bytes"),
    (1023, "1023 bytes"),
    (1024, "1.0 KB"),
    (1535, "1.4 KB"),
    (1536, "1.5 KB"),
    (10 * 1024 - 1, "9.9 KB"),
    (12 * 1024 + 900, "12 KB"),
    (1024 * 1024 - 1, "1023 KB"),
    (int(3.25 * 1024 * 1024), "3.2 MB"),
    (200 * 1024 * 1024, "200 MB"),
    (5 * 1024**4, "5120 GB"),
]


@pytest.mark.parametrize(("size", "words"), SIZES)
def test_one_size_format(size: int, words: str) -> None:
    assert humanise.file_size(size) == words.replace(" ", humanise.NBSP)


@pytest.mark.skipif(shutil.which("node") is None, reason="the page's script is checked with Node.js")
def test_the_uploaders_sizes_are_the_servers() -> None:
    """The uploader says the size the ticket will list (it said "1 KB" for a file listed as "112 bytes")."""
    program = f"""
        import {{ fileSize }} from {json.dumps(SCRIPT.as_uri())};
        console.log(JSON.stringify({json.dumps([size for size, _ in SIZES])}.map(fileSize)));
    """
    result = subprocess.run(
        ["node", "--input-type=module", "-e", program], capture_output=True, text=True, check=True, timeout=30
    )
    assert json.loads(result.stdout) == [humanise.file_size(size) for size, _ in SIZES]


def test_exact_time_is_strftimes_in_the_c_locale() -> None:
    """Written out for speed: the same text as `f"{day} {moment:%b %Y, %H:%M} UTC"` in every month, also
    for a time given in another zone and a year before 1000."""
    zone = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    for month in range(1, 13):
        for moment in (
            datetime.datetime(2026, month, 1, 0, 0, tzinfo=datetime.UTC),
            datetime.datetime(2026, month, 28, 23, 59, 59, tzinfo=zone),
            datetime.datetime(999, month, 9, 7, 5, tzinfo=datetime.UTC),
        ):
            utc = moment.astimezone(datetime.UTC)
            assert humanise.exact_time(moment) == f"{utc.day} {utc:%b %Y, %H:%M} UTC"

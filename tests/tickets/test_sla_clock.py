"""The SLA clock (tickets/sla.py), table-driven, without a database, on a frozen clock: every instant is
given, none is read from the system clock.

Dates: in 2026, 23 Oct, 6 Mar and 27 Nov are Fridays; Germany's daylight-saving time ends on Sunday 25 Oct
(03:00 CEST → 02:00 CET) and the US's starts on Sunday 8 Mar (02:00 EST → 03:00 EDT); Ascension Day
(Thursday 14 May) and Christmas (Friday 25 Dec) are public holidays in Germany."""

from __future__ import annotations

import datetime

import pytest

from tickets import sla

UTC = datetime.UTC
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
NINE_TO_FIVE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
WITH_LUNCH = {day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
SUNDAYS_ROUND_THE_CLOCK = {"sun": [["00:00", "24:00"]]}
HOUR = 3600


def at(text: str, zone: str = "UTC") -> datetime.datetime:
    """A wall time in a zone, e.g. at("2026-10-23 16:00", BERLIN)."""
    return datetime.datetime.fromisoformat(text).replace(
        tzinfo=datetime.UTC if zone == "UTC" else sla.parse_time_zone(zone)
    )


def calendar(
    zone: str = BERLIN, hours: dict | None = None, *, country: str = "", closed: tuple[str, ...] = ()
) -> sla.BusinessHours:
    return sla.business_hours(
        time_zone=zone,
        opening_hours=NINE_TO_FIVE if hours is None else hours,
        holiday_country=country,
        closed_dates=[datetime.date.fromisoformat(day) for day in closed],
    )


BERLIN_OFFICE = calendar(country="DE", closed=("2026-12-24", "2026-12-31"))

# (case, clock, start, working seconds to add, expected due)
DUE_TIMES = [
    ("24x7 adds wall time", sla.ALWAYS_OPEN, at("2026-10-23 16:00"), 4 * HOUR, at("2026-10-23 20:00")),
    ("24x7 ignores DST", sla.ALWAYS_OPEN, at("2026-10-24 23:30"), 4 * HOUR, at("2026-10-25 03:30")),
    ("within a day", BERLIN_OFFICE, at("2026-10-21 10:00", BERLIN), 2 * HOUR, at("2026-10-21 12:00", BERLIN)),
    ("ends at closing", BERLIN_OFFICE, at("2026-10-21 15:00", BERLIN), 2 * HOUR, at("2026-10-21 17:00", BERLIN)),
    ("overnight", BERLIN_OFFICE, at("2026-10-21 16:00", BERLIN), 2 * HOUR, at("2026-10-22 10:00", BERLIN)),
    ("across a weekend", BERLIN_OFFICE, at("2026-11-27 16:00", BERLIN), 2 * HOUR, at("2026-11-30 10:00", BERLIN)),
    ("opened on a Saturday", BERLIN_OFFICE, at("2026-11-28 12:00", BERLIN), 30 * 60, at("2026-11-30 09:30", BERLIN)),
    ("opened before hours", BERLIN_OFFICE, at("2026-11-26 06:00", BERLIN), HOUR, at("2026-11-26 10:00", BERLIN)),
    ("over a public holiday", BERLIN_OFFICE, at("2026-05-13 16:00", BERLIN), 2 * HOUR, at("2026-05-15 10:00", BERLIN)),
    # 24 Dec entered by hand, 25 Dec a public holiday, then the weekend.
    ("over Christmas", BERLIN_OFFICE, at("2026-12-23 16:30", BERLIN), HOUR, at("2026-12-28 09:30", BERLIN)),
    ("a week of working time", BERLIN_OFFICE, at("2026-11-23 09:00", BERLIN), 40 * HOUR, at("2026-11-27 17:00", BERLIN)),
    # Friday 16:00 CEST (14:00Z) + 2 working hours = Monday 10:00 CET (09:00Z): 67 h of wall time, not 66.
    ("across the end of DST", BERLIN_OFFICE, at("2026-10-23 16:00", BERLIN), 2 * HOUR, at("2026-10-26 09:00")),
    ("across the start of US DST", calendar(NEW_YORK), at("2026-03-06 16:00", NEW_YORK), 2 * HOUR, at("2026-03-09 14:00")),
    ("lunch break", calendar(hours=WITH_LUNCH), at("2026-11-26 11:30", BERLIN), HOUR, at("2026-11-26 13:30", BERLIN)),
    # A round-the-clock Sunday has 25 hours when DST ends and 23 when it starts.
    ("25-hour Sunday", calendar(hours=SUNDAYS_ROUND_THE_CLOCK), at("2026-10-25 00:00", BERLIN), 25 * HOUR, at("2026-10-25 23:00")),
    ("23-hour Sunday", calendar(hours=SUNDAYS_ROUND_THE_CLOCK), at("2026-03-29 00:00", BERLIN), 23 * HOUR, at("2026-03-29 22:00")),
    # 12:00 in New York is 18:00 in Berlin: closed until Monday.
    ("start given in another zone", BERLIN_OFFICE, at("2026-11-27 12:00", NEW_YORK), HOUR, at("2026-11-30 10:00", BERLIN)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clock", "start", "seconds", "expected"), [c[1:] for c in DUE_TIMES], ids=[c[0] for c in DUE_TIMES]
)
def test_due_times(clock, start, seconds, expected):
    due = sla.add_working_seconds(clock, start, seconds)
    assert due == expected
    assert due.tzinfo is UTC
    # Counting back gives the same working time.
    assert sla.working_seconds(clock, start, due) == pytest.approx(seconds)


WORKING_TIME = [
    ("24x7 across DST", sla.ALWAYS_OPEN, at("2026-10-25 00:00", BERLIN), at("2026-10-26 00:00", BERLIN), 25 * HOUR),
    ("a weekend counts nothing", BERLIN_OFFICE, at("2026-11-27 17:00", BERLIN), at("2026-11-30 09:00", BERLIN), 0),
    ("a holiday counts nothing", BERLIN_OFFICE, at("2026-05-14 00:00", BERLIN), at("2026-05-15 00:00", BERLIN), 0),
    ("a whole week", BERLIN_OFFICE, at("2026-11-23 00:00", BERLIN), at("2026-11-30 00:00", BERLIN), 40 * HOUR),
    ("Ascension week", BERLIN_OFFICE, at("2026-05-11 00:00", BERLIN), at("2026-05-18 00:00", BERLIN), 32 * HOUR),
    ("backwards is nothing", BERLIN_OFFICE, at("2026-11-30 00:00", BERLIN), at("2026-11-23 00:00", BERLIN), 0),
    ("round-the-clock Sunday, DST ends", calendar(hours=SUNDAYS_ROUND_THE_CLOCK), at("2026-10-24 12:00"), at("2026-10-26 12:00"), 25 * HOUR),
    ("round-the-clock Sunday, DST starts", calendar(hours=SUNDAYS_ROUND_THE_CLOCK), at("2026-03-28 12:00"), at("2026-03-30 12:00"), 23 * HOUR),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clock", "start", "end", "expected"), [c[1:] for c in WORKING_TIME], ids=[c[0] for c in WORKING_TIME]
)
def test_working_time(clock, start, end, expected):
    assert sla.working_seconds(clock, start, end) == expected


# A target's life: each step is (action, instant), applied in order to a clock started at `start`;
# then `due_at(target)` must be `expected`. Actions: pause, resume, retarget:<seconds> (a priority change:
# the due time is recomputed from the original start with the new target).
LIVES = [
    ("24x7, untouched", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 4 * HOUR, [], at("2026-11-02 12:00")),
    ("24x7, paused 3 h", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 4 * HOUR,
     [("pause", at("2026-11-02 09:00")), ("resume", at("2026-11-02 12:00"))], at("2026-11-02 15:00")),
    ("24x7, paused twice", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 4 * HOUR,
     [("pause", at("2026-11-02 09:00")), ("resume", at("2026-11-02 10:00")),
      ("pause", at("2026-11-02 11:00")), ("resume", at("2026-11-02 11:30"))], at("2026-11-02 13:30")),
    ("24x7, paused across DST", sla.ALWAYS_OPEN, at("2026-10-24 20:00"), 4 * HOUR,
     [("pause", at("2026-10-24 21:00")), ("resume", at("2026-10-25 09:00", BERLIN))], at("2026-10-25 11:00")),
    # Paused Friday 16:00 to Monday 10:00 Berlin: one working hour paused (Fri 16-17) and one (Mon 9-10).
    ("business hours, paused over a weekend", BERLIN_OFFICE, at("2026-11-27 14:00", BERLIN), 4 * HOUR,
     [("pause", at("2026-11-27 16:00", BERLIN)), ("resume", at("2026-11-30 10:00", BERLIN))],
     at("2026-11-30 12:00", BERLIN)),
    ("business hours, paused only while closed", BERLIN_OFFICE, at("2026-11-27 14:00", BERLIN), 4 * HOUR,
     [("pause", at("2026-11-27 18:00", BERLIN)), ("resume", at("2026-11-30 08:00", BERLIN))],
     at("2026-11-30 10:00", BERLIN)),
    ("priority raised", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 24 * HOUR,
     [("retarget:14400", at("2026-11-02 09:00"))], at("2026-11-02 12:00")),
    ("priority lowered after a pause", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 4 * HOUR,
     [("pause", at("2026-11-02 09:00")), ("resume", at("2026-11-02 10:00")), ("retarget:86400", at("2026-11-02 11:00"))],
     at("2026-11-03 09:00")),
    # Resolved after 2 h (the clock stops), reopened a day later: 2 h of 4 remain from the reopening.
    ("reopened", sla.ALWAYS_OPEN, at("2026-11-02 08:00"), 4 * HOUR,
     [("pause", at("2026-11-02 10:00")), ("resume", at("2026-11-03 10:00"))], at("2026-11-03 12:00")),
    ("reopened after the weekend", BERLIN_OFFICE, at("2026-11-27 09:00", BERLIN), 8 * HOUR,
     [("pause", at("2026-11-27 15:00", BERLIN)), ("resume", at("2026-12-01 09:00", BERLIN))],
     at("2026-12-01 11:00", BERLIN)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clock", "start", "target", "steps", "expected"), [c[1:] for c in LIVES], ids=[c[0] for c in LIVES]
)
def test_pause_resume_retarget(clock, start, target, steps, expected):
    state = sla.ClockState(started_at=start)
    for action, moment in steps:
        if action == "pause":
            state = sla.pause(state, moment)
            assert state.paused
        elif action == "resume":
            before = sla.elapsed_seconds(clock, state, moment)
            state = sla.resume(clock, state, moment)
            # Resuming does not count the paused time.
            assert sla.elapsed_seconds(clock, state, moment) == pytest.approx(before)
        else:
            target = float(action.split(":")[1])
    assert sla.due_at(clock, state, target) == expected
    assert sla.elapsed_seconds(clock, state, expected) == pytest.approx(target)


def test_the_warning_comes_at_80_percent():
    state = sla.ClockState(started_at=at("2026-11-30 09:00", BERLIN))
    warning = sla.due_at(BERLIN_OFFICE, state, 10 * HOUR, fraction=sla.WARNING_FRACTION)
    assert warning == at("2026-11-30 17:00", BERLIN)  # 8 of 10 working hours: all of Monday's
    assert sla.due_at(BERLIN_OFFICE, state, 10 * HOUR) == at("2026-12-01 11:00", BERLIN)


def test_a_paused_clock_stands_still():
    state = sla.pause(sla.ClockState(started_at=at("2026-11-02 08:00")), at("2026-11-02 09:00"))
    assert sla.elapsed_seconds(sla.ALWAYS_OPEN, state, at("2026-11-02 09:00")) == HOUR
    assert sla.elapsed_seconds(sla.ALWAYS_OPEN, state, at("2026-11-09 09:00")) == HOUR
    assert sla.pause(state, at("2026-11-05 00:00")) is state  # pausing again changes nothing
    assert (
        sla.resume(
            sla.ALWAYS_OPEN, sla.ClockState(started_at=at("2026-11-02 08:00")), at("2026-11-03 00:00")
        ).paused_seconds
        == 0
    )


NOW = at("2026-11-30 10:00", BERLIN)


def status(due, *, met=None, breached=False, paused=False, remaining=None) -> sla.TargetStatus:
    return sla.TargetStatus(
        due_at=due, met=met, breached=breached, paused=paused, seconds_remaining=remaining
    )


STATUSES = [
    ("no target", sla.ALWAYS_OPEN, {"due": None}, sla.NO_TARGET),
    ("running", sla.ALWAYS_OPEN, {"due": at("2026-11-30 12:00", BERLIN)},
     status(at("2026-11-30 12:00", BERLIN), remaining=2 * HOUR)),
    ("running on business hours", BERLIN_OFFICE, {"due": at("2026-12-01 10:00", BERLIN)},
     status(at("2026-12-01 10:00", BERLIN), remaining=8 * HOUR)),
    ("overdue, not swept yet", sla.ALWAYS_OPEN, {"due": at("2026-11-30 09:30", BERLIN)},
     status(at("2026-11-30 09:30", BERLIN), breached=True, remaining=-30 * 60)),
    ("breached", sla.ALWAYS_OPEN, {"due": at("2026-11-30 09:00", BERLIN), "breached_at": at("2026-11-30 09:00", BERLIN)},
     status(at("2026-11-30 09:00", BERLIN), breached=True, remaining=-HOUR)),
    # Paused on Friday 16:00 with the due time Monday 10:00: two working hours left, frozen; no due time.
    ("paused", BERLIN_OFFICE, {"due": at("2026-11-30 10:00", BERLIN), "paused_since": at("2026-11-27 16:00", BERLIN)},
     status(None, paused=True, remaining=2 * HOUR)),
    ("met", sla.ALWAYS_OPEN, {"due": at("2026-11-30 12:00", BERLIN), "met": True},
     status(at("2026-11-30 12:00", BERLIN), met=True)),
    ("missed", sla.ALWAYS_OPEN, {"due": at("2026-11-30 08:00", BERLIN), "met": False},
     status(at("2026-11-30 08:00", BERLIN), met=False, breached=True)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clock", "stored", "expected"), [c[1:] for c in STATUSES], ids=[c[0] for c in STATUSES]
)
def test_target_status(clock, stored, expected):
    values = {"met": None, "breached_at": None, "paused_since": None, **stored}
    assert sla.target_status(clock, now=NOW, **values) == expected


@pytest.mark.parametrize(
    ("due", "stopped", "breached_at", "met"),
    [
        (at("2026-11-30 12:00"), at("2026-11-30 11:59"), None, True),
        (at("2026-11-30 12:00"), at("2026-11-30 12:00"), None, True),
        (at("2026-11-30 12:00"), at("2026-11-30 12:01"), None, False),
        # Reopened after a breach: never met again, whenever it is resolved.
        (at("2026-11-30 12:00"), at("2026-11-30 11:00"), at("2026-11-30 10:00"), False),
    ],
)
def test_is_met(due, stopped, breached_at, met):
    assert sla.is_met(due=due, stopped_at=stopped, breached_at=breached_at) is met


BAD_HOURS = [
    ("not an object", [["09:00", "17:00"]], "Expected an object"),
    ("unknown day", {"monday": [["09:00", "17:00"]]}, "Unknown day"),
    ("not pairs", {"mon": ["09:00", "17:00"]}, "pairs"),
    ("bad time", {"mon": [["9am", "17:00"]]}, "not a time of day"),
    ("past midnight", {"mon": [["09:00", "24:30"]]}, "not a time of day"),
    ("closes before it opens", {"mon": [["17:00", "09:00"]]}, "does not open before"),
    ("overlap", {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlap"),
    ("never open", {"mon": []}, "open at some time"),
]


@pytest.mark.parametrize(("hours", "message"), [c[1:] for c in BAD_HOURS], ids=[c[0] for c in BAD_HOURS])
def test_bad_opening_hours_say_what_is_wrong(hours, message):
    with pytest.raises(ValueError, match=message):
        sla.parse_opening_hours(hours)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "IANA time zone"),
        ({"holiday_country": "XX"}, "holidays package"),
        ({"holiday_country": "DE", "holiday_subdivision": "ZZ"}, "subdivision"),
        ({"holiday_subdivision": "BY"}, "needs a country"),
    ],
)
def test_bad_calendars_are_refused(fields, message):
    values = {"time_zone": BERLIN, "opening_hours": NINE_TO_FIVE, **fields}
    with pytest.raises(ValueError, match=message):
        sla.business_hours(**values)


def test_regional_holidays_come_from_the_holidays_package():
    bavaria = sla.business_hours(
        time_zone=BERLIN, opening_hours=NINE_TO_FIVE, holiday_country="DE", holiday_subdivision="BY"
    )
    # Epiphany (6 Jan 2027, a Wednesday) is a holiday in Bavaria, not in Berlin.
    start = at("2027-01-05 16:00", BERLIN)
    assert sla.add_working_seconds(bavaria, start, 2 * HOUR) == at("2027-01-07 10:00", BERLIN)
    assert sla.add_working_seconds(calendar(country="DE"), start, 2 * HOUR) == at("2027-01-06 10:00", BERLIN)


def test_a_calendar_closed_for_good_cannot_bring_a_target_due():
    closed = sla.BusinessHours(
        time_zone=sla.parse_time_zone(BERLIN),
        weekly=sla.parse_opening_hours(NINE_TO_FIVE),
        closed=_Everything(),
    )
    with pytest.raises(ValueError, match="no working time"):
        sla.add_working_seconds(closed, at("2026-11-30 10:00"), HOUR)


class _Everything:
    def __contains__(self, day: object) -> bool:
        return True


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        sla.working_seconds(sla.ALWAYS_OPEN, datetime.datetime(2026, 11, 30), at("2026-11-30 10:00"))


def test_clock_of_builds_and_caches_calendars():
    assert sla.clock_of(time_zone=None, opening_hours=None) is sla.ALWAYS_OPEN
    first = sla.clock_of(time_zone=BERLIN, opening_hours=NINE_TO_FIVE, holiday_country="DE")
    again = sla.clock_of(time_zone=BERLIN, opening_hours=dict(NINE_TO_FIVE), holiday_country="DE")
    assert first is again
    assert sla.add_working_seconds(first, at("2026-05-13 16:00", BERLIN), 2 * HOUR) == at(
        "2026-05-15 10:00", BERLIN
    )

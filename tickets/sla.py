"""The SLA clock: when a target falls due, how much of it is left, and what a pause does to it.

A target (first response, resolution) is a number of seconds counted on a policy's clock: every second
(24×7, `ALWAYS_OPEN`) or only the opening hours of a business calendar (`BusinessHours`: a time zone, weekly
opening hours in local wall time, and closed dates — a country's public holidays from the `holidays`
package and dates entered by hand). A target's clock starts when the ticket opens; the resolution clock
pauses (waiting on the customer, resolved) and resumes, and the paused working time moves its due time.

Pure: no ORM, no Django, no "now" of its own. Every function takes the instants it works on (aware
datetimes) and computes in UTC, so daylight-saving changes are the time zone database's business and the
whole module is tested table-driven with a frozen clock (tests/tickets/test_sla_clock.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays

UTC = datetime.UTC
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A warning is due when this share of a target has elapsed.
WARNING_FRACTION = 0.8
# A calendar with no working time within this many days cannot bring any target due.
MAX_SEARCH_DAYS = 3_700
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

Interval = tuple[datetime.datetime, datetime.datetime]


class InvalidCalendar(ValueError):
    """A calendar's stored fields do not describe a calendar; the message says what is wrong."""


class Clock(Protocol):
    """What counts: the UTC intervals of working time from `start` on (clipped to `start`), in order."""

    def working_intervals(self, start: datetime.datetime) -> Iterator[Interval]: ...


class AlwaysOpen:
    """The 24×7 clock: every second counts."""

    def working_intervals(self, start: datetime.datetime) -> Iterator[Interval]:
        yield _utc(start), datetime.datetime.max.replace(tzinfo=UTC)

    def __repr__(self) -> str:
        return "ALWAYS_OPEN"


ALWAYS_OPEN = AlwaysOpen()


class ClosedDates:
    """Local dates on which a business calendar is closed all day: a country's public holidays (the
    `holidays` package, observed days included) and dates entered by hand."""

    def __init__(
        self, dates: Iterable[datetime.date] = (), *, country: str = "", subdivision: str = ""
    ) -> None:
        self.dates = frozenset(dates)
        self.public = holidays.country_holidays(country, subdiv=subdivision or None) if country else None

    def __contains__(self, day: object) -> bool:
        return day in self.dates or (self.public is not None and day in self.public)


@dataclass(frozen=True)
class BusinessHours:
    """A business-hours calendar. `weekly` has one tuple of (opens, closes) local times per weekday,
    Monday first; `closes` None means midnight at the end of the day (written "24:00")."""

    time_zone: ZoneInfo
    weekly: tuple[tuple[tuple[datetime.time, datetime.time | None], ...], ...]
    closed: Container[datetime.date] = frozenset()

    def _day_intervals(self, day: datetime.date) -> Iterator[Interval]:
        if day in self.closed:
            return
        for opens, closes in self.weekly[day.weekday()]:
            begin = datetime.datetime.combine(day, opens, tzinfo=self.time_zone)
            if closes is None:
                end = datetime.datetime.combine(
                    day + datetime.timedelta(days=1), datetime.time(0), self.time_zone
                )
            else:
                end = datetime.datetime.combine(day, closes, tzinfo=self.time_zone)
            # In UTC: subtracting two times of one zone would ignore a DST change between them.
            yield begin.astimezone(UTC), end.astimezone(UTC)

    def working_intervals(self, start: datetime.datetime) -> Iterator[Interval]:
        start = _utc(start)
        day = start.astimezone(self.time_zone).date()
        empty_days = 0
        while empty_days < MAX_SEARCH_DAYS:
            found = False
            for begin, end in self._day_intervals(day):
                if end <= start:
                    continue
                found = True
                yield max(begin, start), end
            empty_days = 0 if found else empty_days + 1
            day += datetime.timedelta(days=1)
        raise ValueError(f"no working time within {MAX_SEARCH_DAYS} days of {start.isoformat()}")


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        raise ValueError("the SLA clock works on aware datetimes only")
    return moment.astimezone(UTC)


# ---------------------------------------------------------------------------------------------------------
# Counting working time


def working_seconds(clock: Clock, start: datetime.datetime, end: datetime.datetime) -> float:
    """Working seconds between two instants (0 if `end` is not after `start`)."""
    start, end = _utc(start), _utc(end)
    total = 0.0
    if end <= start:
        return total
    for begin, finish in clock.working_intervals(start):
        if begin >= end:
            break
        total += (min(finish, end) - begin).total_seconds()
    return total


def signed_working_seconds(clock: Clock, start: datetime.datetime, end: datetime.datetime) -> float:
    """Working seconds from `start` to `end`, negative when `end` is earlier."""
    if end >= start:
        return working_seconds(clock, start, end)
    return -working_seconds(clock, end, start)


def add_working_seconds(clock: Clock, start: datetime.datetime, seconds: float) -> datetime.datetime:
    """The instant at which `seconds` of working time have passed since `start`."""
    remaining = max(seconds, 0.0)
    for begin, finish in clock.working_intervals(start):
        length = (finish - begin).total_seconds()
        if remaining <= length:
            return begin + datetime.timedelta(seconds=remaining)
        remaining -= length
    raise AssertionError("working_intervals never ends")  # pragma: no cover - it raises instead


# ---------------------------------------------------------------------------------------------------------
# A target's clock


@dataclass(frozen=True)
class ClockState:
    """Where a target's clock stands: when it started, the working seconds it spent paused before now,
    and since when it is paused (None while it runs)."""

    started_at: datetime.datetime
    paused_seconds: float = 0.0
    paused_since: datetime.datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None


def pause(state: ClockState, at: datetime.datetime) -> ClockState:
    """Stop the clock at `at` (no change if it is paused already)."""
    return state if state.paused else dataclasses.replace(state, paused_since=at)


def resume(clock: Clock, state: ClockState, at: datetime.datetime) -> ClockState:
    """Run the clock again from `at`: the working time it spent paused is added to `paused_seconds`."""
    if state.paused_since is None:
        return state
    paused = working_seconds(clock, state.paused_since, at)
    return ClockState(state.started_at, state.paused_seconds + paused, None)


def elapsed_seconds(clock: Clock, state: ClockState, now: datetime.datetime) -> float:
    """Working seconds the clock has counted by `now` (frozen while paused)."""
    until = state.paused_since or now
    return working_seconds(clock, state.started_at, until) - state.paused_seconds


def due_at(
    clock: Clock, state: ClockState, target_seconds: float, *, fraction: float = 1.0
) -> datetime.datetime:
    """When `fraction` of the target will have elapsed if the clock runs from now on: the start plus the
    target plus the time spent paused, counted on the clock. (For a paused clock this is where it stood
    when it paused; it moves when the clock resumes.)"""
    return add_working_seconds(clock, state.started_at, target_seconds * fraction + state.paused_seconds)


def is_met(
    *, due: datetime.datetime, stopped_at: datetime.datetime, breached_at: datetime.datetime | None
) -> bool:
    """A target is met when its clock stopped (reply, resolution) by its due time, and no breach was
    recorded before."""
    return breached_at is None and stopped_at <= due


@dataclass(frozen=True)
class TargetStatus:
    """One target as the API shows it."""

    due_at: datetime.datetime | None
    met: bool | None
    breached: bool
    paused: bool
    seconds_remaining: int | None


NO_TARGET = TargetStatus(due_at=None, met=None, breached=False, paused=False, seconds_remaining=None)


def target_status(
    clock: Clock,
    *,
    due: datetime.datetime | None,
    met: bool | None,
    breached_at: datetime.datetime | None,
    paused_since: datetime.datetime | None,
    now: datetime.datetime,
) -> TargetStatus:
    """Where a target stands at `now`. Decided targets (met or not) have nothing remaining; a running one
    counts the working seconds to its due time (negative once overdue); a paused one has no due time (it
    moves while paused) and its remaining time frozen at the pause."""
    if due is None:
        return NO_TARGET
    if met is not None:
        return TargetStatus(
            due, met, breached_at is not None or not met, paused=False, seconds_remaining=None
        )
    counted_until = paused_since or now
    remaining = signed_working_seconds(clock, counted_until, due)
    return TargetStatus(
        due_at=None if paused_since else due,
        met=None,
        breached=breached_at is not None or remaining <= 0,
        paused=paused_since is not None,
        seconds_remaining=round(remaining),
    )


# ---------------------------------------------------------------------------------------------------------
# Calendars from their stored form


def parse_opening_hours(
    value: object,
) -> tuple[tuple[tuple[datetime.time, datetime.time | None], ...], ...]:
    """Weekly opening hours from `{"mon": [["09:00", "17:00"]], …, "sun": []}` (local wall times; a day
    left out is closed; "24:00" closes at midnight). Raises InvalidCalendar saying what is wrong."""
    if not isinstance(value, Mapping):
        raise InvalidCalendar('Expected an object such as {"mon": [["09:00", "17:00"]]}.')
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise InvalidCalendar(f"Unknown day {unknown[0]!r}; use {', '.join(WEEKDAYS)}.")
    week = []
    for name in WEEKDAYS:
        spans = value.get(name) or []
        if not isinstance(spans, Sequence) or isinstance(spans, str):
            raise InvalidCalendar(f"{name}: expected a list of [opens, closes] pairs.")
        day: list[tuple[datetime.time, datetime.time | None]] = []
        previous_end = -1
        for span in spans:
            if not isinstance(span, Sequence) or isinstance(span, str) or len(span) != 2:
                raise InvalidCalendar(f"{name}: expected [opens, closes] pairs such as ['09:00', '17:00'].")
            opens, closes = (_minutes(name, text) for text in span)
            if opens >= closes or opens == 24 * 60:
                raise InvalidCalendar(f"{name}: {span[0]}–{span[1]} does not open before it closes.")
            if opens < previous_end:
                raise InvalidCalendar(f"{name}: opening hours overlap or are out of order.")
            previous_end = closes
            day.append((_time_of(opens), None if closes == 24 * 60 else _time_of(closes)))
        week.append(tuple(day))
    if not any(week):
        raise InvalidCalendar("The calendar must be open at some time of the week.")
    return tuple(week)


def _minutes(day: str, text: object) -> int:
    match = _CLOCK_TIME.match(text) if isinstance(text, str) else None
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minutes > 24 * 60:
        raise InvalidCalendar(f"{day}: {text!r} is not a time of day (HH:MM, 00:00–24:00).")
    return minutes


def _time_of(minutes: int) -> datetime.time:
    return datetime.time(minutes // 60, minutes % 60)


def parse_time_zone(name: str) -> ZoneInfo:
    if name not in _time_zone_names():
        raise InvalidCalendar(f"{name!r} is not an IANA time zone name (such as Europe/Berlin).")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:  # pragma: no cover - listed but not loadable
        raise InvalidCalendar(f"{name!r} is not an IANA time zone name.") from error


@lru_cache(maxsize=1)
def _time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_holiday_country(country: str, subdivision: str) -> None:
    """Raise InvalidCalendar unless the `holidays` package knows the country (ISO 3166-1 alpha-2) and
    subdivision."""
    if not country:
        if subdivision:
            raise InvalidCalendar("A subdivision needs a country.")
        return
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise InvalidCalendar(
            f"{country!r} is not a country the holidays package knows (ISO codes such as DE)."
        )
    if subdivision and subdivision not in supported[country]:
        raise InvalidCalendar(
            f"{subdivision!r} is not a subdivision of {country} the holidays package knows."
        )


def business_hours(
    *,
    time_zone: str,
    opening_hours: object,
    holiday_country: str = "",
    holiday_subdivision: str = "",
    closed_dates: Iterable[datetime.date] = (),
) -> BusinessHours:
    """A business calendar from its stored fields (validated: raises InvalidCalendar)."""
    check_holiday_country(holiday_country, holiday_subdivision)
    return BusinessHours(
        time_zone=parse_time_zone(time_zone),
        weekly=parse_opening_hours(opening_hours),
        closed=ClosedDates(closed_dates, country=holiday_country, subdivision=holiday_subdivision),
    )


@lru_cache(maxsize=256)
def _cached_business_hours(
    time_zone: str,
    opening_hours: tuple[tuple[str, tuple[tuple[str, str], ...]], ...],
    holiday_country: str,
    holiday_subdivision: str,
    closed_dates: tuple[datetime.date, ...],
) -> BusinessHours:
    return business_hours(
        time_zone=time_zone,
        opening_hours={day: [list(span) for span in spans] for day, spans in opening_hours},
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
        closed_dates=closed_dates,
    )


def clock_of(
    *,
    time_zone: str | None,
    opening_hours: Mapping[str, Any] | None,
    holiday_country: str = "",
    holiday_subdivision: str = "",
    closed_dates: Iterable[datetime.date] | None = (),
) -> Clock:
    """The clock of a policy: 24×7 without a calendar (`time_zone` None), else its business hours. Built
    calendars are cached by value (reads render hundreds of tickets on a handful of calendars)."""
    if time_zone is None or opening_hours is None:
        return ALWAYS_OPEN
    hours = tuple(
        (day, tuple((str(span[0]), str(span[1])) for span in spans))
        for day, spans in sorted(opening_hours.items())
    )
    return _cached_business_hours(
        time_zone, hours, holiday_country or "", holiday_subdivision or "", tuple(sorted(closed_dates or ()))
    )

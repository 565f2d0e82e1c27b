"""`core.formats.iso_timestamp`: the one spelling of a moment on every wire (API, events, the ledger)."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from core.formats import iso_timestamp

UTC = datetime.UTC
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("moment", "spelled"),
    [
        (datetime.datetime(2026, 12, 2, 4, 23, 38, 123456, tzinfo=UTC), "2026-12-02T04:23:38.123456Z"),
        (datetime.datetime(2026, 12, 2, 4, 23, 38, tzinfo=UTC), "2026-12-02T04:23:38.000000Z"),
        (datetime.datetime(2026, 12, 2, 4, 23, 38, 1, tzinfo=UTC), "2026-12-02T04:23:38.000001Z"),
        (datetime.datetime(992, 1, 5, 0, 0, 0, 500000, tzinfo=UTC), "0992-01-05T00:00:00.500000Z"),
        (datetime.datetime(2026, 12, 2, 9, 53, 38, 5, tzinfo=IST), "2026-12-02T04:23:38.000005Z"),
        (datetime.datetime(2026, 12, 2, 0, 30, tzinfo=IST), "2026-12-01T19:00:00.000000Z"),
        (
            datetime.datetime(2026, 7, 1, 12, 0, 0, 250, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
            "2026-07-01T16:00:00.000250Z",
        ),
        (datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")), "2026-01-01T00:00:00.000000Z"),
        (None, None),
    ],
)
def test_a_moment_is_spelled_in_utc_with_microseconds_and_a_z(moment, spelled):
    assert iso_timestamp(moment) == spelled

"""Arrays sent to PostgreSQL as literals it parses itself, and repeated values sent once."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.db import connection

from core.bulk import array_literal, distinct_with_positions

pytestmark = pytest.mark.django_db


def test_numbers_uuids_and_nulls_come_back_as_sent() -> None:
    ids = [3, None, -7, 2**40]
    keys = [uuid.uuid4(), None, uuid.uuid4()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::bigint[], %s::uuid[], %s::int[]",
            [array_literal(ids), array_literal(keys), array_literal([])],
        )
        assert cursor.fetchone() == (ids, keys, [])


@pytest.mark.parametrize("value", ["a", "1}", "NULL", "1,2;DROP TABLE x", True, 1.5, b"1"])
def test_anything_but_numbers_and_uuids_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="integers, UUIDs and NULLs only"):
        array_literal([1, value])  # type: ignore[list-item]


def test_a_repeated_value_is_sent_once_and_picked_by_position() -> None:
    at = datetime.datetime(2026, 12, 5, 9, 30, tzinfo=datetime.UTC)
    later = at + datetime.timedelta(seconds=1)
    times, positions = distinct_with_positions([at, at, later, at])
    assert times == [at, later]
    assert positions == [1, 1, 2, 1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg((%s::timestamptz[])[p] ORDER BY n) FROM unnest(%s::int[]) WITH ORDINALITY AS q(p, n)",
            [times, array_literal(positions)],
        )
        assert cursor.fetchone()[0] == [at, at, later, at]

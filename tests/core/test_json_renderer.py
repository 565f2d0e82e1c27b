"""The API's renderer (core.renderers.FastJSONRenderer) writes exactly the bytes DRF's JSONRenderer writes."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections import OrderedDict

import pytest
from django.utils.functional import lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from core.renderers import FastJSONRenderer

fast, drf = FastJSONRenderer(), JSONRenderer()


def same_bytes(data: object, accepted: str | None = "application/json") -> bytes:
    expected = drf.render(data, accepted, {})
    assert fast.render(data, accepted, {}) == expected
    return expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_value_renders_to_the_same_bytes(value: object) -> None:
    same_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        [1e-5, 1e-6, 1.23e-7, 0.0001, 1e16, 1e-300, 5e-324, -0.0, 0.1],
        {"text": 'separators \u2028 and \u2029, controls \x00\x1f\x7f, quotes " and \\ and é 😀'},
        {"big": 2**64, "small": -(2**63) - 1},
        {1: "an int key", None: "a None key"},
        {
            "when": datetime.datetime(2026, 12, 6, 15, 4, 5, 120000, tzinfo=datetime.UTC),
            "day": datetime.date(2026, 1, 2),
        },
        {"id": uuid.UUID(int=7), "amount": decimal.Decimal("1.50"), "set": {3}, "bytes": b"raw"},
        OrderedDict([("b", 1), ("a", [(1, 2)])]),
        [ErrorDetail("This field is required.", code="required"), lazy(lambda: "lazy text", str)()],
        "an e-5 engine at 0.00001 % (text that looks like orjson's spellings)",
    ],
)
def test_what_orjson_would_write_otherwise_is_still_drfs(value: object) -> None:
    same_bytes(value)


def test_pretty_printing_and_refusals_are_drfs() -> None:
    assert same_bytes({"a": [1]}, "application/json; indent=4") == b'{\n    "a": [\n        1\n    ]\n}'
    assert fast.render(None) == b""
    for renderer in (drf, fast):  # a lone surrogate: refused by both
        with pytest.raises(UnicodeEncodeError):
            renderer.render(["\ud800"])


def test_a_page_of_tickets_is_written_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """UUIDs (`…a8e-4e…`), lease IDs and timestamps do not send a response to DRF's slower encoder."""

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("rendered by DRF's encoder")

    page = [
        {
            "id": "7d4cb7a8-a40a-4e74-b7f8-e255a9bbde79",
            "deployment_id": "ve1e2f8rn3x0k968fsy09gtaf4cxpr6wn27vq43hy/397/1/1",
            "created_at": "2026-12-06T15:53:10.762756Z",
            "match": {"rank": 0.0607927, "snippet": None},
            "sla": {"seconds_remaining": -5400, "met": None},
        }
    ]
    expected = drf.render(page)
    monkeypatch.setattr(JSONRenderer, "render", refuse)
    assert fast.render(page) == expected

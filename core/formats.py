"""Wire formats every app shares: canonical JSON and ISO-8601 UTC timestamps.

Canonical JSON is what the VirtEngine TypeScript client computes before it signs a body, and what the
ledger hashes, the envelopes seal and the chain anchors: one function, so that the same value always has
the same bytes wherever it is hashed. Timestamps leave the system in one layout (UTC, microseconds, `Z`)
on every surface: REST, WebSocket frames, the chain's private documents, the ledger's blocks.

Pure module: no Django.
"""

from __future__ import annotations

import datetime
import json.encoder
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["canonical_json", "canonical_json_bytes", "iso_timestamp", "parse_iso_timestamp", "parse_uuid"]

# JSON.stringify's QuoteJSONString (ES2019 "well-formed" version): the short escapes, \u00xx for the
# other C0 controls, \uXXXX for lone surrogates; everything else — <>&, U+2028/9, DEL, non-ASCII — is
# emitted as is (unlike Python's json with ensure_ascii, and Go's encoding/json). CPython's C string
# encoder (ensure_ascii=False) escapes exactly the same characters, the same way, for any string
# without surrogates: it is used for those, and the slow path only for the rest.
_encode_basestring = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE_RE = re.compile('[\\x00-\\x1f"\\\\\ud800-\udfff]')
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_JS_CONSTANTS = {None: "null", True: "true", False: "false"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _as_utf16_string(value: str) -> str:
    """Join surrogate pairs that Python holds as two code points, as a JS string would see them.

    `json.loads` already joins escaped pairs; this covers strings built in Python. Lone surrogates
    survive and are then escaped like JSON.stringify does.
    """
    if not _SURROGATE_RE.search(value):
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _quote(value: str) -> str:
    if value.isascii() or not _SURROGATE_RE.search(value):
        return _encode_basestring(value)
    return '"' + _ESCAPE_RE.sub(_escape_char, _as_utf16_string(value)) + '"'


def _utf16_key(value: str) -> bytes:
    # JS's default sort compares UTF-16 code units; big-endian UTF-16 bytes compare the same way.
    # Python's own str order (code points) differs above U+FFFF: "😀" (D83D DE00) < "！" (FF01) in JS.
    return _as_utf16_string(value).encode("utf-16-be", "surrogatepass")


def _sorted_items(value: Mapping[str, Any]) -> list[tuple[str, Any]]:
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
    if all(key.isascii() for key in value):
        return sorted(value.items())  # code-point order is UTF-16 order for ASCII
    return sorted(value.items(), key=lambda item: _utf16_key(item[0]))


def _js_number(value: float) -> str:
    """A finite or non-finite double as JSON.stringify prints it (ECMA-262 Number::toString)."""
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"  # also -0
    # repr gives the shortest round-tripping digits, the same digits JS picks; only the layout differs.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)  # always, for a finite Decimal; narrows the type
    # value = 0.digits × 10**n, in the spec's terms k = len(digits).
    n = len(digit_tuple) + exponent
    k = len(digits)
    prefix = "-" if value < 0 else ""
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return prefix + body


def canonical_json(value: Any) -> str:
    """The VirtEngine client's canonical JSON of `value`: `JSON.stringify` with sorted keys.

    Object keys are sorted recursively by UTF-16 code units (JavaScript's default `Array.sort`),
    separators carry no spaces, and strings are escaped exactly as `JSON.stringify` does: no HTML
    escaping, non-ASCII and U+2028/U+2029 kept raw, C0 controls as `\\b \\f \\n \\r \\t` or
    lowercase `\\u00xx`, lone surrogates as `\\udxxx`. Floats print as JavaScript prints numbers
    (`1.0` → `1`, `-0.0` → `0`, `1e21` → `1e+21`, NaN/±Infinity → `null`).

    One deliberate difference: Python `int` is printed exactly, whereas JavaScript would first round
    it to a double. `JSON.stringify` never writes an integer literal that rounds (integral doubles
    below 1e21 print all their digits, larger ones use exponent form and parse back as floats), so
    every body a JavaScript client sends hashes identically; exactness only keeps two different
    integers from other clients from sharing one hash.

    Accepts what `json.loads` produces (dict with str keys, list, str, int, float, bool, None) and
    tuples; anything else raises `TypeError`.
    """
    if value is None or isinstance(value, bool):
        return _JS_CONSTANTS[value]
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(int(value))  # int(...) drops IntEnum-style subclasses' custom __str__
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_quote(k)}:{canonical_json(v)}" for k, v in _sorted_items(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json_bytes(value: Any) -> bytes:
    """`canonical_json` as UTF-8 bytes: what is hashed, sealed and written to the ledger."""
    return canonical_json(value).encode()


def iso_timestamp(moment: datetime.datetime | None) -> str | None:
    """ISO-8601 in UTC with microseconds and a `Z` (`2026-12-02T04:23:38.000000Z`); None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset():  # naive (read as local time) or in another zone
        moment = moment.astimezone(datetime.UTC)
    # orjson, not isoformat (3 µs for an aware datetime; a page of the list API has 450) or strftime (glibc's
    # %Y writes the year 992 as "992"). orjson leaves out a zero fraction of a second.
    text = orjson.dumps(moment, option=orjson.OPT_UTC_Z).decode()[1:-1]
    return text if moment.microsecond else f"{text[:-1]}.000000Z"


def parse_iso_timestamp(text: str) -> datetime.datetime:
    """An ISO-8601 timestamp (with `Z` or an offset) as an aware datetime; ValueError otherwise."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment


_PLAIN_NUMBER = re.compile(r"[0-9]+")


def parse_plain_number(value: object, *, max_digits: int = 18) -> int | None:
    """A whole number written in ASCII digits only, at most `max_digits` of them, else None.

    Not `str.isdigit()`: it also says yes to `²` or `①`, which `int()` then refuses (a 500 where a reader
    asked for "ticket ²").
    """
    if not isinstance(value, str) or len(value) > max_digits or not _PLAIN_NUMBER.fullmatch(value):
        return None
    return int(value)


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_uuid(value: object) -> uuid.UUID | None:
    """A UUID written the one way ids leave this system (36 characters, hyphenated, any case), else None.

    `uuid.UUID` also takes braces, a `urn:uuid:` prefix or no hyphens; accepting those would give one
    object several names (in group names, cache keys and URLs), so they are not ids here.
    """
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or not _CANONICAL_UUID.fullmatch(value):
        return None
    return uuid.UUID(value)

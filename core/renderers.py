"""The API's JSON renderer: DRF's `JSONRenderer` byte for byte, with orjson doing the work.

DRF's renderer runs the standard library's pure-Python encoder (about a millisecond for a page of 50
tickets); orjson writes the same JSON ten times faster. Where the two could differ, DRF's own rendering
is used instead, so the bytes on the wire are what they were:
- pretty-printing asked for (`Accept: application/json; indent=4`), or settings other than DRF's defaults
  (compact, non-ASCII kept, strict);
- anything orjson does not take as Python's `json` does: integers beyond 64 bits, keys that are not
  strings, lone surrogates (orjson refuses them; DRF then answers as it did);
- datetimes, dataclasses and the other types DRF's encoder converts are handed to that encoder (orjson's
  `default`), never written by orjson's own rules;
- floats that orjson spells differently (`1e-6` and `0.00001` where Python writes `1e-06` and `1e-05`):
  the output is searched for those spellings and rendered again by DRF when one appears.
U+2028 and U+2029 are escaped as DRF escapes them. One difference is left: a float NaN or infinity, which
DRF refuses (a 500), orjson writes as null; neither the strict request parser (core/parsers.py) nor any
column we read lets one in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# Python writes a float below 1e-4 with an exponent of at least two digits; orjson may write it out
# (`0.00001`) or with one digit (`7e-6`), as a number: after `:`, `,`, `[` or at the start, and a digit
# before `e`. Searched for by the literal part first (a pattern starting with a character class scans a
# 50 kB page in milliseconds); a string holding such text only sends the response through DRF's encoder.
_ONE_DIGIT_EXPONENT = re.compile(rb"e-\d(?:[,\]}]|$)")
_WRITTEN_OUT = re.compile(rb"0\.0000")
_BEFORE_A_NUMBER = frozenset(b":,[")


def _spelled_otherwise(rendered: bytes) -> bool:
    for found in _ONE_DIGIT_EXPONENT.finditer(rendered):
        if found.start() and rendered[found.start() - 1] in b"0123456789":
            return True
    for found in _WRITTEN_OUT.finditer(rendered):
        start = found.start() - (found.start() > 0 and rendered[found.start() - 1] == ord("-"))
        if start == 0 or rendered[start - 1] in _BEFORE_A_NUMBER:
            return True
    return False


_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if (
            self.compact
            and self.strict
            and not self.ensure_ascii
            and self.get_indent(accepted_media_type or "", dict(renderer_context or {})) is None
        ):
            try:
                rendered = orjson.dumps(data, default=JSONEncoder().default, option=_OPTIONS)
            except (TypeError, ValueError):
                pass  # DRF's encoder answers as it always did
            else:
                if not _spelled_otherwise(rendered):
                    if _LINE_SEPARATOR in rendered or _PARAGRAPH_SEPARATOR in rendered:
                        rendered = rendered.replace(_LINE_SEPARATOR, b"\\u2028").replace(
                            _PARAGRAPH_SEPARATOR, b"\\u2029"
                        )
                    return rendered
        return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]

"""What JSON this system accepts from outside (request bodies, WebSocket frames, stored metadata).

Python's `json` takes more than PostgreSQL, JavaScript or our own recursion can hold: `NaN` and `1e999`
(jsonb refuses non-finite numbers), `"\\u0000"` (no text column holds NUL), lone surrogates (not UTF-8),
and nesting deep enough to exhaust the interpreter's stack. `loads` refuses all of them with a
`JsonRefused` that says what is wrong and where (`metadata.tags[3]`), so a caller can answer a 400 that
names the problem; `check` applies the same rules, plus size bounds, to a value already parsed.

Pure module: no Django.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "JsonRefused", "check", "loads"]

# Deeper than any document a client of ours sends; far below the interpreter's recursion limit, so every
# recursive walk of an accepted value (serialisers, canonical JSON, jsonb) is safe.
DEFAULT_MAX_DEPTH = 32

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JsonRefused(ValueError):
    """A JSON document was refused; `path` names the offending value ("" for the document itself)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{message} (at {path})" if path else message)
        self.message = message
        self.path = path


def _reject_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonRefused(f"The number {text[:40]} is out of range.")
    return value


def loads(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse a JSON document strictly (what `JSON.parse` accepts, and storable), or raise JsonRefused."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except JsonRefused:
        raise
    except RecursionError as error:
        raise JsonRefused(f"Nested deeper than {max_depth} levels.") from error
    except ValueError as error:  # JSONDecodeError, and integers past Python's digit limit
        message = getattr(error, "msg", None) or str(error)
        raise JsonRefused(f"Not valid JSON: {message}.") from error
    check(value, max_depth=max_depth)
    return value


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _string_problem(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "Contains a NUL character." if found.group() == "\x00" else "Contains a lone UTF-16 surrogate."


def _members(item: dict | list | tuple, where: str) -> list[tuple[Any, str]]:
    if isinstance(item, dict):
        for key in item:
            if not isinstance(key, str):
                raise JsonRefused("Object keys must be strings.", where)
            problem = _string_problem(key)
            if problem:
                raise JsonRefused(f"A key: {problem[0].lower()}{problem[1:]}", where)
        return [(member, _path(where, key)) for key, member in item.items()]
    return [(member, _path(where, index)) for index, member in enumerate(item)]


def check(
    value: Any,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_keys: int | None = None,
    path: str = "",
) -> None:
    """Refuse (JsonRefused) a parsed value that is not storable JSON or exceeds the bounds.

    Depth counts containers: `{}` is 1 deep, `{"a": [1]}` 2. `max_keys` bounds the number of object keys
    at every level together. Iterative, so a value of any depth is checked without recursion.
    """
    keys = 0
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                raise JsonRefused(problem, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonRefused("Not a finite number.", where)
        elif isinstance(item, (dict, list, tuple)):
            if depth + 1 > max_depth:
                raise JsonRefused(f"Nested deeper than {max_depth} levels.", where)
            if isinstance(item, dict):
                keys += len(item)
                if max_keys is not None and keys > max_keys:
                    raise JsonRefused(f"More than {max_keys} keys.", where)
            stack.extend((member, member_path, depth + 1) for member, member_path in _members(item, where))
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise JsonRefused(f"{type(item).__name__} is not a JSON value.", where)

"""canonical_json and body_hash against what JavaScript (the VirtEngine client) computes.

Every expected string is what ``JSON.stringify`` prints in Node/V8 for the same value with keys
sorted by ``Object.keys(o).sort()``; the optional differential test checks a random batch against a
local ``node`` when one is installed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats import canonical_json
from core.wallet import body_hash

JS_CASES = [
    # (id, Python value, JSON.stringify output)
    ("sorted-object", {"b": 1, "a": [1, "é", None, True]}, '{"a":[1,"é",null,true],"b":1}'),
    ("html-not-escaped", "<>&", '"<>&"'),
    ("html-in-keys", {"<k>": "&"}, '{"<k>":"&"}'),
    ("line-separators-raw", "\u2028\u2029", '"\u2028\u2029"'),
    ("non-ascii-raw", "ünïcödé — 日本 😀", '"ünïcödé — 日本 😀"'),
    ("short-escapes", '\b\f\n\r\t"\\', '"\\b\\f\\n\\r\\t\\"\\\\"'),
    ("other-controls", "\x00\x01\x1b\x1f", '"\\u0000\\u0001\\u001b\\u001f"'),
    ("del-raw", "\x7f", '"\x7f"'),
    ("slash-raw", "a/b", '"a/b"'),
    ("lone-high-surrogate", "\ud800", '"\\ud800"'),
    ("lone-low-surrogate", "\udc00x", '"\\udc00x"'),
    ("pair-as-two-code-points", "\ud83d\ude00", '"😀"'),
    ("float-1e21", 1e21, "1e+21"),
    ("float-1e20", 1e20, "100000000000000000000"),
    ("float-0.1", 0.1, "0.1"),
    ("float-1.5", 1.5, "1.5"),
    ("float-1.0", 1.0, "1"),
    ("float-100.0", 100.0, "100"),
    ("float-neg-zero", -0.0, "0"),
    ("float-1e-6", 1e-6, "0.000001"),
    ("float-1e-7", 1e-7, "1e-7"),
    ("float-min-subnormal", 5e-324, "5e-324"),
    ("float-max", 1.7976931348623157e308, "1.7976931348623157e+308"),
    ("float-123e-20", 123e-20, "1.23e-18"),
    ("float-1.5e300", 1.5e300, "1.5e+300"),
    ("float-negative-small", -1.5e-10, "-1.5e-10"),
    ("float-point-three", 0.1 + 0.2, "0.30000000000000004"),
    ("float-2^53+2", float(2**53 + 2), "9007199254740994"),
    ("float-big-integral", 1.2345678901234567e20, "123456789012345670000"),
    ("float-fraction", 123456.789, "123456.789"),
    ("float-nan", math.nan, "null"),
    ("float-inf", math.inf, "null"),
    ("float-neg-inf", -math.inf, "null"),
    ("nan-in-array", [math.nan, 1], "[null,1]"),
    ("int-zero", 0, "0"),
    ("int-negative", -5, "-5"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("null", None, "null"),
    ("empty-object", {}, "{}"),
    ("empty-array", [], "[]"),
    ("empty-string", "", '""'),
    ("tuple-as-array", (1, "a"), '[1,"a"]'),
    (
        "nested-sorting",
        {"z": {"y": 1, "x": [{"b": 2, "a": 1}]}, "a": {}},
        '{"a":{},"z":{"x":[{"a":1,"b":2}],"y":1}}',
    ),
    # Object.keys(o).sort() compares UTF-16 code units: digits < upper < lower < 😀 (D83D…) < ！ (FF01).
    # Python's code-point order would put 😀 (U+1F600) after ！; integer-like keys are NOT numeric.
    (
        "keys-utf16-order",
        {"\uff01": 1, "\U0001f600": 2, "a": 3, "B": 4, "10": 5, "2": 6},
        '{"10":5,"2":6,"B":4,"a":3,"😀":2,"！":1}',
    ),
    ("keys-prefix-first", {"ab": 1, "a": 2, "": 3}, '{"":3,"a":2,"ab":1}'),
    ("keys-escaped", {"a\nb": 1}, '{"a\\nb":1}'),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in JS_CASES], ids=[c[0] for c in JS_CASES])
def test_matches_javascript(value, expected):
    assert canonical_json(value) == expected


def test_python_int_is_printed_exactly():
    # Deliberate, documented difference: JS would round to 9007199254740992.
    assert canonical_json(2**53 + 1) == "9007199254740993"
    assert canonical_json(10**21) == "1000000000000000000000"


def test_keys_sort_differs_from_python_code_point_order():
    keys = ["\uff01", "\U0001f600"]
    assert sorted(keys) == ["\uff01", "\U0001f600"]  # Python: by code point
    assert canonical_json(dict.fromkeys(keys, 0)).startswith('{"\U0001f600"')  # JS: by UTF-16 unit


# Ids of their own (repr(object()) differs on each collection): pytest-xdist's workers must collect alike.
@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {None: 1}, b"bytes", {1, 2}, object()],
    ids=["int-key", "none-key", "bytes", "set", "object"],
)
def test_refuses_what_json_cannot_hold(value):
    with pytest.raises(TypeError):
        canonical_json(value)


# --- body_hash ----------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


BODY_CASES = [
    # (id, raw body, the bytes that get hashed: None = the raw body itself; an empty body hashes to "")
    ("empty", b"", None),
    ("json-reordered", b'{ "b" : 1,\n "a" : "x" }', b'{"a":"x","b":1}'),
    ("json-array", b"[1, 2.0, 3e0]", b"[1,2,3]"),
    ("json-scalar", b'"hello"', b'"hello"'),
    ("json-null", b"null", b"null"),
    ("json-surrounding-whitespace", b' \n{"a":1}\t', b'{"a":1}'),
    ("json-escaped-unicode", b'{"s":"\\u00e9\\u003c"}', '{"s":"é<"}'.encode()),
    ("json-duplicate-keys-last-wins", b'{"a":1,"a":2}', b'{"a":2}'),
    ("json-negative-zero", b"[-0, -0.0]", b"[0,0]"),
    ("json-big-exponent-is-infinity", b"[1e400]", b"[null]"),
    ("text", b"hello world", b"hello world"),
    ("nan-is-not-json", b"NaN", b"NaN"),
    ("infinity-is-not-json", b"[Infinity]", b"[Infinity]"),
    ("trailing-garbage", b'{"a":1} x', b'{"a":1} x'),
    ("two-values", b"{} {}", b"{} {}"),
    ("invalid-utf8", b'"\xff"', b'"\xff"'),
    ("utf8-bom", b'\xef\xbb\xbf{"a":1}', b'\xef\xbb\xbf{"a":1}'),
    ("raw-control-char-in-string", b'"a\nb"', b'"a\nb"'),
    ("multipart", b"--boundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--boundary--", None),
    ("text-looks-numeric", b"--1", None),
]


@pytest.mark.parametrize(("raw", "hashed"), [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES])
def test_body_hash(raw, hashed):
    expected = "" if raw == b"" else sha(raw if hashed is None else hashed)
    assert body_hash(raw, "application/json") == expected


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "multipart/form-data"])
def test_body_hash_ignores_content_type(content_type):
    assert body_hash(b'{"b":1,"a":2}', content_type) == sha(b'{"a":2,"b":1}')
    assert body_hash(b"plain", content_type) == sha(b"plain")


def test_body_hash_of_absurdly_deep_json_falls_back_to_raw():
    raw = b"[" * 100_000 + b"]" * 100_000
    assert body_hash(raw, "application/json") == sha(raw)


# --- properties ---------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)


def same_js_value(parsed: object, original: object) -> bool:
    """Equality as JavaScript sees it: a float printed without a fraction parses back as an int."""
    if isinstance(original, float):
        return isinstance(parsed, (int, float)) and float(parsed) == original
    if isinstance(original, list):
        return (
            isinstance(parsed, list)
            and len(parsed) == len(original)
            and all(same_js_value(p, o) for p, o in zip(parsed, original, strict=True))
        )
    if isinstance(original, dict):
        return (
            isinstance(parsed, dict)
            and parsed.keys() == original.keys()
            and all(same_js_value(parsed[k], original[k]) for k in original)
        )
    return type(parsed) is type(original) and parsed == original


@settings(max_examples=300)
@given(json_values)
def test_output_parses_back_to_the_same_value(value):
    assert same_js_value(json.loads(canonical_json(value)), value)


@settings(max_examples=200)
@given(json_values)
def test_body_hash_is_independent_of_wire_formatting(value):
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    pretty = json.dumps(value, ensure_ascii=True, indent=2, sort_keys=True).encode()
    assert body_hash(compact, None) == body_hash(pretty, None) == sha(canonical_json(value).encode())


# --- differential check against a real JavaScript engine, when one is installed ---------------

_JS_STABLE_STRINGIFY = r"""
const canon = (v) => {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
};
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => process.stdout.write(JSON.stringify(JSON.parse(input).map(canon))));
"""

_TRICKY_STRINGS = ["<>&", "\u2028", "\x00", "\x7f", "é", "\U0001f600", "\uff01", "\ud800", '"', "\\", "\n"]


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == 2:
        return rng.choice(
            [
                rng.uniform(-1e6, 1e6),
                rng.random() * 10.0 ** rng.randint(-330, 308),
                float(rng.randint(0, 10**6)) * 10.0 ** rng.randint(-10, 25),
            ]
        )
    if kind in (3, 4):
        return _random_string(rng)
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_random_string(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _random_string(rng: random.Random) -> str:
    return "".join(
        rng.choice([*_TRICKY_STRINGS, chr(rng.randint(0x20, 0x2FFF)), chr(rng.randint(0x10000, 0x10FFFF))])
        for _ in range(rng.randrange(6))
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_matches_node_on_random_values():
    rng = random.Random(20251128)
    values = [_random_value(rng) for _ in range(2000)]
    # json.dumps escapes everything to ASCII, so Node parses exactly these values.
    completed = subprocess.run(
        ["node", "-e", _JS_STABLE_STRINGIFY],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = json.loads(completed.stdout)
    mismatches = [(v, e) for v, e in zip(values, expected, strict=True) if canonical_json(v) != e]
    assert mismatches == []

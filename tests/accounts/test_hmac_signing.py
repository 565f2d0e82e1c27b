"""Provider HMAC credentials: the message, a known answer, the time window and every tampering."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.hmac_signing import (
    HEADER_PRINCIPAL,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HmacAuthError,
    Reason,
    hmac_fields_from_headers,
    hmac_fields_from_query,
    hmac_headers,
    hmac_message,
    hmac_query,
    hmac_sign,
    raw_query_without_auth,
    verify_hmac,
)

SECRET = "s3cret-value"
PRINCIPAL = "vep_0123456789abcdef01234567"
NOW_S = 1_764_312_000
PATH = "/api/v1/tickets"
QUERY = "status=open&limit=50"
# Computed independently: printf 'GET\n/api/v1/tickets\nstatus=open&limit=50\n<principal>\n1764312000'
#   | openssl dgst -sha256 -hmac 's3cret-value'  (Node's crypto.createHmac gives the same).
KNOWN_SIGNATURE = "61c4f04c48ffa6e2b9c3c43ae8d84421ca37e218b94468111ab26ed0d7c0bbbd"


def check(**overrides: object) -> int:
    kwargs: dict[str, object] = {
        "secret": SECRET,
        "method": "GET",
        "path": PATH,
        "raw_query": QUERY,
        "principal": PRINCIPAL,
        "timestamp_str": str(NOW_S),
        "signature_hex": KNOWN_SIGNATURE,
        "now_s": NOW_S,
    }
    return verify_hmac(**(kwargs | overrides))


def refused(reason: str, **overrides: object) -> HmacAuthError:
    with pytest.raises(HmacAuthError) as excinfo:
        check(**overrides)
    assert excinfo.value.reason_code == reason, excinfo.value.message
    return excinfo.value


def test_message_layout():
    assert hmac_message("get", "/p", "a=1", "vep_x", 12) == b"GET\n/p\na=1\nvep_x\n12"
    assert hmac_message("POST", "/p", "", "vep_x", "12") == b"POST\n/p\n\nvep_x\n12"


def test_known_answer():
    assert hmac_sign(SECRET, "GET", PATH, QUERY, PRINCIPAL, NOW_S) == KNOWN_SIGNATURE
    assert hmac_sign(SECRET.encode(), "get", PATH, QUERY, PRINCIPAL, str(NOW_S)) == KNOWN_SIGNATURE


def test_headers():
    assert hmac_headers(PRINCIPAL, SECRET, "GET", PATH, QUERY, NOW_S) == {
        HEADER_PRINCIPAL: PRINCIPAL,
        HEADER_TIMESTAMP: str(NOW_S),
        HEADER_SIGNATURE: KNOWN_SIGNATURE,
    }


def test_valid_request_returns_its_timestamp():
    assert check() == NOW_S
    assert check(signature_hex=KNOWN_SIGNATURE.upper()) == NOW_S
    assert check(secret=SECRET.encode()) == NOW_S


@pytest.mark.parametrize(
    ("now_offset", "reason"),
    [(300, None), (301, Reason.STALE), (86_400, Reason.STALE), (-300, None), (-301, Reason.FUTURE)],
)
def test_window(now_offset, reason):
    if reason is None:
        assert check(now_s=NOW_S + now_offset) == NOW_S
    else:
        refused(reason, now_s=NOW_S + now_offset)


def test_custom_window():
    refused(Reason.STALE, now_s=NOW_S + 61, window_s=60)


TAMPERED = [
    ("method", {"method": "POST"}),
    ("path", {"path": PATH + "/x"}),
    ("path-encoding", {"path": "/api/v1/%74ickets"}),
    ("query-value", {"raw_query": "status=closed&limit=50"}),
    ("query-order", {"raw_query": "limit=50&status=open"}),
    ("query-dropped", {"raw_query": ""}),
    ("principal", {"principal": "vep_0123456789abcdef01234568"}),
    ("timestamp", {"timestamp_str": str(NOW_S + 1)}),
    ("secret", {"secret": SECRET + "x"}),
    ("signature", {"signature_hex": KNOWN_SIGNATURE[:-1] + "c"}),
]


@pytest.mark.parametrize("overrides", [t[1] for t in TAMPERED], ids=[t[0] for t in TAMPERED])
def test_tampering_is_refused(overrides):
    refused(Reason.BAD_SIGNATURE, **overrides)


MALFORMED = [
    ("no-principal", {"principal": None}, Reason.MISSING),
    ("no-timestamp", {"timestamp_str": ""}, Reason.MISSING),
    ("no-signature", {"signature_hex": None}, Reason.MISSING),
    ("principal-newline", {"principal": "vep_1\nGET"}, Reason.BAD_PRINCIPAL),
    ("principal-space", {"principal": "vep 1"}, Reason.BAD_PRINCIPAL),
    ("principal-too-long", {"principal": "v" * 257}, Reason.BAD_PRINCIPAL),
    ("timestamp-text", {"timestamp_str": "now"}, Reason.BAD_TIMESTAMP),
    ("timestamp-negative", {"timestamp_str": "-1764312000"}, Reason.BAD_TIMESTAMP),
    ("timestamp-leading-zero", {"timestamp_str": "01764312000"}, Reason.BAD_TIMESTAMP),
    ("timestamp-fraction", {"timestamp_str": "1764312000.0"}, Reason.BAD_TIMESTAMP),
    ("timestamp-exponent", {"timestamp_str": "1.764312e9"}, Reason.BAD_TIMESTAMP),
    ("timestamp-milliseconds", {"timestamp_str": "1764312000000"}, Reason.BAD_TIMESTAMP),
    ("signature-not-hex", {"signature_hex": "z" * 64}, Reason.BAD_SIGNATURE_ENCODING),
    ("signature-short", {"signature_hex": KNOWN_SIGNATURE[:-2]}, Reason.BAD_SIGNATURE_ENCODING),
    ("signature-long", {"signature_hex": KNOWN_SIGNATURE + "00"}, Reason.BAD_SIGNATURE_ENCODING),
    (
        "signature-base64",
        {"signature_hex": "YcTwTEj/puK5w8Q66NhEIco34hi5RGgRGrJu0NfAu70="},
        Reason.BAD_SIGNATURE_ENCODING,
    ),
]


@pytest.mark.parametrize(("overrides", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_is_refused(overrides, reason):
    refused(reason, **overrides)


def test_error_carries_code_and_message():
    error = refused(Reason.STALE, now_s=NOW_S + 1000)
    assert error.reason_code == "timestamp_stale"
    assert str(error) == error.message
    assert repr(error).startswith("HmacAuthError('timestamp_stale'")


# --- fields and WebSocket queries ---------------------------------------------------------------


def test_fields_from_headers_case_insensitive():
    headers = {
        name.lower(): value
        for name, value in hmac_headers(PRINCIPAL, SECRET, "GET", PATH, QUERY, NOW_S).items()
    }
    assert hmac_fields_from_headers(headers) == {
        "principal": PRINCIPAL,
        "timestamp": str(NOW_S),
        "signature": KNOWN_SIGNATURE,
        "nonce": None,
        "content_sha256": None,
    }


def test_no_principal_means_not_an_hmac_request():
    # X-VE-Timestamp and X-VE-Signature are shared with the wallet scheme.
    assert (
        hmac_fields_from_headers({"X-VE-Address": "ve1x", HEADER_TIMESTAMP: "1", HEADER_SIGNATURE: "x"})
        is None
    )
    assert hmac_fields_from_headers({}) is None
    assert hmac_fields_from_query({"ve_ts": "1", "ve_sig": "x", "since": "4"}) is None


def test_partial_fields_are_reported_missing():
    fields = hmac_fields_from_headers({HEADER_PRINCIPAL: PRINCIPAL})
    assert fields == {
        "principal": PRINCIPAL,
        "timestamp": None,
        "signature": None,
        "nonce": None,
        "content_sha256": None,
    }
    refused(Reason.MISSING, timestamp_str=fields["timestamp"], signature_hex=fields["signature"])


RAW_QUERY_CASES = [
    ("", ""),
    ("ve_principal=p&ve_ts=1&ve_hmac=ab", ""),
    ("since=3&ve_principal=p&ve_ts=1&ve_hmac=ab", "since=3"),
    ("b=2&ve_ts=1&a=1&ve_hmac=ab&ve_principal=p&c=%20x+y", "b=2&a=1&c=%20x+y"),
    ("ve%5Fts=1&ve_hmacx=2&ve_principalz=3", "ve_hmacx=2&ve_principalz=3"),
    ("flag&ve_hmac&x=", "flag&x="),
    ("a=1&&b=2&ve_ts=1", "a=1&&b=2"),
]


@pytest.mark.parametrize(("raw", "signed"), RAW_QUERY_CASES)
def test_raw_query_without_auth(raw, signed):
    assert raw_query_without_auth(raw) == signed


@pytest.mark.parametrize("original", ["", "since=12", "tail=200&since=2025-11-28T00%3A00%3A00Z&q=a+b"])
def test_websocket_query_round_trip(original):
    path = "/api/v1/tickets/abc/updates"
    principal = "vep_a/b c"  # quoted in the query, exact in the message
    signed_query = hmac_query("vep_abc", SECRET, "GET", path, original, NOW_S)
    url = urlsplit(f"wss://support.example{path}?{signed_query}")
    fields = hmac_fields_from_query(parse_qs(url.query, keep_blank_values=True))
    assert fields is not None
    assert raw_query_without_auth(url.query) == original
    assert (
        verify_hmac(
            secret=SECRET,
            method="GET",
            path=url.path,
            raw_query=raw_query_without_auth(url.query),
            principal=fields["principal"],
            timestamp_str=fields["timestamp"],
            signature_hex=fields["signature"],
            now_s=NOW_S,
        )
        == NOW_S
    )
    quoted = hmac_fields_from_query(parse_qs(hmac_query(principal, SECRET, "GET", path, original, NOW_S)))
    assert quoted is not None
    assert quoted["principal"] == principal


# --- properties ---------------------------------------------------------------------------------

segments = st.text(alphabet="abcxyz019-._~%+=", max_size=10)
queries = st.lists(segments, max_size=5).map("&".join)
paths = st.lists(st.text(alphabet="abcz09-._~%", min_size=1, max_size=8), max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)
principals = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_:.-", min_size=1, max_size=64)


@settings(max_examples=200)
@given(
    secret=st.binary(min_size=1, max_size=64),
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE"]),
    path=paths,
    query=queries,
    principal=principals,
    skew=st.integers(min_value=-300, max_value=300),
)
def test_sign_then_verify_round_trip(secret, method, path, query, principal, skew):
    headers = hmac_headers(principal, secret, method, path, query, NOW_S)
    fields = hmac_fields_from_headers(headers)
    assert fields is not None
    verify_hmac(
        secret=secret,
        method=method,
        path=path,
        raw_query=query,
        principal=fields["principal"],
        timestamp_str=fields["timestamp"],
        signature_hex=fields["signature"],
        now_s=NOW_S + skew,
    )


@settings(max_examples=200)
@given(query=queries)
def test_appended_auth_is_always_stripped_exactly(query):
    if any(part.partition("=")[0] in {"ve_ts", "ve_hmac", "ve_principal"} for part in query.split("&")):
        return
    assert raw_query_without_auth(hmac_query("vep_1", "s", "GET", "/", query, NOW_S)) == query

"""Wallet-signed requests: the cosmjs reference vectors, fresh keys, and every way to be refused."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.addresses import address_from_pubkey
from core.formats import canonical_json
from core.wallet import (
    HEADER_ADDRESS,
    HEADER_NONCE,
    HEADER_PUBKEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Reason,
    VerifiedWallet,
    WalletAuthError,
    amino_sign_bytes,
    body_hash,
    generate_private_key,
    public_key_of,
    request_sign_bytes,
    sign_request,
    signed_payload,
    verify_signed_request,
    wallet_fields_from_headers,
    wallet_fields_from_query,
    wallet_query_params,
)
from tests.reference import reference_file

CHAIN_ID = "virtengine-1"
PREFIX = "ve"
NOW_MS = 1_764_312_000_000
SECP256K1_ORDER = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)


VECTORS_PATH = reference_file("wallet-auth-vectors.json")
VECTOR_FILE: dict[str, Any] = json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH else {}
VECTORS: list[dict[str, Any]] = VECTOR_FILE.get("vectors", [])


def test_the_reference_vectors_are_present() -> None:
    # Without them the vector tests below would have nothing to run on: that is a failure, not a skip.
    assert VECTORS, (
        "wallet-auth-vectors.json not found; set VE_REFERENCE_DIR to VirtEngine's reference directory"
    )
    assert len(VECTORS) >= 3


VECTOR_IDS = [f"{v['method']} {v['path']}" for v in VECTORS]


def vector_body(vector: dict[str, Any]) -> bytes:
    sent = vector["body_json_sent"]
    return b"" if sent is None else sent.encode("utf-8")


def verify(
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    now_ms: int = NOW_MS,
    chain_id: str = CHAIN_ID,
) -> VerifiedWallet:
    fields = wallet_fields_from_headers(headers)
    assert fields is not None
    return verify_signed_request(
        method=method,
        path=path,
        headers_or_params=fields,
        raw_body=body,
        content_type="application/json" if body else None,
        now_ms=now_ms,
        chain_id=chain_id,
        prefix=PREFIX,
    )


def refused(reason: str, **kwargs: Any) -> WalletAuthError:
    with pytest.raises(WalletAuthError) as excinfo:
        verify(**kwargs)
    assert excinfo.value.reason_code == reason, excinfo.value.message
    return excinfo.value


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- reference vectors (signed by @cosmjs/amino) --------------------------------------------------


def test_vector_file_describes_its_key():
    key = bytes.fromhex(VECTOR_FILE["private_key_hex"])
    assert b64(public_key_of(key)) == VECTOR_FILE["pubkey_b64"]
    assert address_from_pubkey(public_key_of(key), VECTOR_FILE["bech32_prefix"]) == VECTOR_FILE["address"]
    assert (VECTOR_FILE["chain_id"], VECTOR_FILE["bech32_prefix"]) == (CHAIN_ID, PREFIX)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_canonical_body_and_hash(vector):
    body = vector_body(vector)
    if body:
        assert canonical_json(json.loads(body)) == vector["canonical_body"]
    assert body_hash(body, "application/json") == vector["body_hash"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_sign_bytes(vector):
    headers = vector["headers"]
    payload = signed_payload(
        vector["method"],
        vector["path"],
        int(headers[HEADER_TIMESTAMP]),
        headers[HEADER_NONCE],
        vector["body_hash"],
    )
    data_b64 = json.loads(vector["sign_bytes_utf8"])["msgs"][0]["value"]["data"]
    assert base64.b64decode(data_b64).decode("utf-8") == payload
    expected = vector["sign_bytes_utf8"].encode("utf-8")
    assert amino_sign_bytes(data_b64, headers[HEADER_ADDRESS], CHAIN_ID) == expected
    assert (
        request_sign_bytes(
            method=vector["method"],
            path=vector["path"],
            timestamp_ms=int(headers[HEADER_TIMESTAMP]),
            nonce=headers[HEADER_NONCE],
            body_hash=body_hash(vector_body(vector), "application/json"),
            address=headers[HEADER_ADDRESS],
            chain_id=CHAIN_ID,
        )
        == expected
    )


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_accepted_at_its_timestamp(vector):
    headers = vector["headers"]
    timestamp = int(headers[HEADER_TIMESTAMP])
    result = verify(
        method=vector["method"],
        path=vector["path"],
        headers=headers,
        body=vector_body(vector),
        now_ms=timestamp,
    )
    assert result == VerifiedWallet(
        address=VECTOR_FILE["address"],
        pubkey=base64.b64decode(VECTOR_FILE["pubkey_b64"]),
        nonce=headers[HEADER_NONCE],
        timestamp_ms=timestamp,
    )


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_sign_request_reproduces_the_cosmjs_signature(vector):
    # RFC 6979 + low-S in libsecp256k1 and in cosmjs: the same key signs the same bytes identically.
    headers = vector["headers"]
    produced = sign_request(
        private_key=bytes.fromhex(VECTOR_FILE["private_key_hex"]),
        method=vector["method"],
        path=vector["path"],
        body=vector_body(vector) or None,
        content_type="application/json",
        timestamp_ms=int(headers[HEADER_TIMESTAMP]),
        nonce=headers[HEADER_NONCE],
        chain_id=CHAIN_ID,
        prefix=PREFIX,
    )
    assert produced == headers


def _flip_r_bit(signature_b64: str) -> str:
    raw = bytearray(base64.b64decode(signature_b64))
    raw[31] ^= 0x01  # last byte of r: still below the group order, so it parses and fails verification
    return b64(bytes(raw))


OTHER_KEY = bytes.fromhex("22" * 32)
OTHER_PUBKEY = public_key_of(OTHER_KEY)


@dataclass(frozen=True)
class Alteration:
    name: str
    reason: Reason
    headers: dict[str, Any] | None = None  # header name -> function of the old value
    method: Any = None
    path: Any = None
    body: Any = None


ALTERATIONS = [
    Alteration(
        "address-of-another-key",
        Reason.ADDRESS_MISMATCH,
        headers={HEADER_ADDRESS: lambda _: address_from_pubkey(OTHER_PUBKEY, PREFIX)},
    ),
    Alteration("address-typo", Reason.BAD_ADDRESS, headers={HEADER_ADDRESS: lambda a: a[:-1] + "q"}),
    Alteration(
        "timestamp-plus-1ms", Reason.BAD_SIGNATURE, headers={HEADER_TIMESTAMP: lambda t: str(int(t) + 1)}
    ),
    Alteration("timestamp-leading-zero", Reason.BAD_TIMESTAMP, headers={HEADER_TIMESTAMP: lambda t: "0" + t}),
    Alteration("nonce", Reason.BAD_SIGNATURE, headers={HEADER_NONCE: lambda n: n[:-1] + "0"}),
    Alteration("signature-bit", Reason.BAD_SIGNATURE, headers={HEADER_SIGNATURE: _flip_r_bit}),
    Alteration(
        "signature-padding-bits",
        Reason.BAD_SIGNATURE_ENCODING,
        headers={HEADER_SIGNATURE: lambda s: s[:-3] + "B=="},
    ),
    Alteration(
        "pubkey-of-another-key", Reason.ADDRESS_MISMATCH, headers={HEADER_PUBKEY: lambda _: b64(OTHER_PUBKEY)}
    ),
    Alteration(
        "pubkey-other-parity",
        Reason.ADDRESS_MISMATCH,
        headers={HEADER_PUBKEY: lambda p: b64(bytes([base64.b64decode(p)[0] ^ 1]) + base64.b64decode(p)[1:])},
    ),
    Alteration("method", Reason.BAD_SIGNATURE, method=lambda m: "PUT" if m == "POST" else "POST"),
    Alteration("method-delete", Reason.BAD_SIGNATURE, method=lambda _: "DELETE"),
    Alteration("path-suffix", Reason.BAD_SIGNATURE, path=lambda p: p + "/"),
    Alteration("path-case", Reason.BAD_SIGNATURE, path=lambda p: p.upper()),
    Alteration(
        "body-added-or-changed", Reason.BAD_SIGNATURE, body=lambda b: (b[:-1] + b',"x":1}') if b else b"{}"
    ),
    Alteration("body-raw-bytes", Reason.BAD_SIGNATURE, body=lambda b: b + b" trailing"),
]


@pytest.mark.parametrize("alteration", ALTERATIONS, ids=[a.name for a in ALTERATIONS])
@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_refused_when_any_field_is_altered(vector, alteration):
    headers = dict(vector["headers"])
    for name, change in (alteration.headers or {}).items():
        headers[name] = change(headers[name])
        assert headers[name] != vector["headers"][name]
    method = alteration.method(vector["method"]) if alteration.method else vector["method"]
    path = alteration.path(vector["path"]) if alteration.path else vector["path"]
    body = alteration.body(vector_body(vector)) if alteration.body else vector_body(vector)
    refused(
        alteration.reason,
        method=method,
        path=path,
        headers=headers,
        body=body,
        now_ms=int(vector["headers"][HEADER_TIMESTAMP]),
    )


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_refused_on_another_chain(vector):
    refused(
        Reason.BAD_SIGNATURE,
        method=vector["method"],
        path=vector["path"],
        headers=vector["headers"],
        body=vector_body(vector),
        now_ms=int(vector["headers"][HEADER_TIMESTAMP]),
        chain_id="virtengine-testnet-1",
    )


def test_vector_body_may_arrive_with_other_key_order_and_spacing():
    vector = next(v for v in VECTORS if v["body_json_sent"])
    reformatted = json.dumps(json.loads(vector["body_json_sent"]), indent=4, ensure_ascii=True).encode()
    verify(
        method=vector["method"],
        path=vector["path"],
        headers=vector["headers"],
        body=reformatted,
        now_ms=int(vector["headers"][HEADER_TIMESTAMP]),
    )


# --- fresh keys ------------------------------------------------------------------------------------


@dataclass
class Signed:
    key: bytes
    method: str
    path: str
    body: bytes
    headers: dict[str, str]

    def check(self, **overrides: Any) -> VerifiedWallet:
        kwargs = {"method": self.method, "path": self.path, "headers": self.headers, "body": self.body}
        return verify(**(kwargs | overrides))

    def refused(self, reason: str, **overrides: Any) -> WalletAuthError:
        kwargs = {"method": self.method, "path": self.path, "headers": self.headers, "body": self.body}
        return refused(reason, **(kwargs | overrides))


def make_signed(
    *,
    key: bytes | None = None,
    method: str = "POST",
    path: str = "/api/v1/tickets",
    body: bytes = b'{"subject":"Disk full","priority":"high"}',
    timestamp_ms: int = NOW_MS,
    nonce: str = "n0nce-For_test",
) -> Signed:
    key = key or generate_private_key()
    headers = sign_request(
        private_key=key,
        method=method,
        path=path,
        body=body or None,
        content_type="application/json",
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        chain_id=CHAIN_ID,
        prefix=PREFIX,
    )
    return Signed(key=key, method=method, path=path, body=body, headers=headers)


def with_header(headers: dict[str, str], name: str, value: str | None) -> dict[str, str]:
    changed = dict(headers)
    if value is None:
        del changed[name]
    else:
        changed[name] = value
    return changed


def test_fresh_key_signs_and_verifies():
    signed = make_signed()
    result = signed.check()
    assert result.address == signed.headers[HEADER_ADDRESS]
    assert result.address == address_from_pubkey(public_key_of(signed.key), PREFIX)
    assert result.pubkey == public_key_of(signed.key)
    assert (result.nonce, result.timestamp_ms) == ("n0nce-For_test", NOW_MS)


def test_fresh_key_without_body():
    make_signed(method="get", path="/api/v1/tickets/abc", body=b"").check(method="GET")


def test_method_case_does_not_matter():
    # Both sides uppercase the method, as the TS client does.
    make_signed(method="patch").check(method="PATCH")
    make_signed(method="PATCH").check(method="patch")


def test_signing_is_deterministic():
    key = generate_private_key()
    assert make_signed(key=key).headers == make_signed(key=key).headers


def test_generated_keys_differ():
    assert generate_private_key() != generate_private_key()


@pytest.mark.parametrize(
    ("now_offset_ms", "reason"),
    [
        (300_000, None),  # exactly five minutes old: still accepted
        (300_001, Reason.STALE),
        (3_600_000, Reason.STALE),
        (-60_000, None),  # one minute ahead of the server clock: accepted
        (-60_001, Reason.FUTURE),
        (-86_400_000, Reason.FUTURE),
    ],
)
def test_timestamp_window(now_offset_ms, reason):
    signed = make_signed()
    if reason is None:
        signed.check(now_ms=NOW_MS + now_offset_ms)
    else:
        signed.refused(reason, now_ms=NOW_MS + now_offset_ms)


def test_pubkey_that_is_not_the_addresses_is_refused():
    signed = make_signed()
    other = make_signed()
    signed.refused(
        Reason.ADDRESS_MISMATCH,
        headers=with_header(signed.headers, HEADER_PUBKEY, other.headers[HEADER_PUBKEY]),
    )


def test_signature_by_another_key_for_the_claimed_address_is_refused():
    victim = make_signed()
    attacker = make_signed()
    forged = with_header(victim.headers, HEADER_SIGNATURE, attacker.headers[HEADER_SIGNATURE])
    victim.refused(Reason.BAD_SIGNATURE, headers=forged)


def test_tampered_body_is_refused():
    make_signed().refused(Reason.BAD_SIGNATURE, body=b'{"subject":"Disk full","priority":"critical"}')


def test_dropped_body_is_refused():
    make_signed().refused(Reason.BAD_SIGNATURE, body=b"")


def test_tampered_path_is_refused():
    make_signed().refused(Reason.BAD_SIGNATURE, path="/api/v1/tickets/other")


def test_high_s_twin_is_refused():
    signed = make_signed()
    raw = base64.b64decode(signed.headers[HEADER_SIGNATURE])
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    high = r + (SECP256K1_ORDER - s).to_bytes(32, "big")
    # Sanity: the twin normalises back to the original, i.e. only the low-S rule tells them apart.
    was_high, normalised = coincurve.ecdsa.signature_normalize(coincurve.ecdsa.deserialize_compact(high))
    assert was_high
    assert coincurve.ecdsa.serialize_compact(normalised) == raw
    signed.refused(Reason.HIGH_S, headers=with_header(signed.headers, HEADER_SIGNATURE, b64(high)))


def _not_on_curve_x() -> bytes:
    for x in range(1, 100):
        candidate = b"\x02" + x.to_bytes(32, "big")
        try:
            coincurve.PublicKey(candidate)
        except ValueError:
            return candidate
    raise AssertionError("no invalid x found")


MALFORMED = [
    # (id, header, new value or None to drop it, reason)
    ("no-address", HEADER_ADDRESS, None, Reason.MISSING),
    ("no-timestamp", HEADER_TIMESTAMP, None, Reason.MISSING),
    ("no-nonce", HEADER_NONCE, None, Reason.MISSING),
    ("no-signature", HEADER_SIGNATURE, None, Reason.MISSING),
    ("no-pubkey", HEADER_PUBKEY, None, Reason.MISSING),
    ("empty-signature", HEADER_SIGNATURE, "", Reason.MISSING),
    ("timestamp-text", HEADER_TIMESTAMP, "yesterday", Reason.BAD_TIMESTAMP),
    ("timestamp-negative", HEADER_TIMESTAMP, "-1764312000000", Reason.BAD_TIMESTAMP),
    ("timestamp-fraction", HEADER_TIMESTAMP, "1764312000000.0", Reason.BAD_TIMESTAMP),
    ("timestamp-seconds-is-stale", HEADER_TIMESTAMP, "1764312000", Reason.STALE),
    ("timestamp-huge", HEADER_TIMESTAMP, "9" * 40, Reason.BAD_TIMESTAMP),
    ("timestamp-unicode-digits", HEADER_TIMESTAMP, "١٧٦٤٣١٢٠٠٠٠٠٠", Reason.BAD_TIMESTAMP),
    ("nonce-short", HEADER_NONCE, "abc1234", Reason.BAD_NONCE),
    ("nonce-long", HEADER_NONCE, "a" * 129, Reason.BAD_NONCE),
    ("nonce-colon", HEADER_NONCE, "abcd:1234", Reason.BAD_NONCE),
    ("nonce-quote", HEADER_NONCE, 'abcd"1234', Reason.BAD_NONCE),
    ("signature-not-base64", HEADER_SIGNATURE, "not base64!", Reason.BAD_SIGNATURE_ENCODING),
    ("signature-63-bytes", HEADER_SIGNATURE, b64(bytes(63)), Reason.BAD_SIGNATURE_ENCODING),
    ("signature-der", HEADER_SIGNATURE, b64(bytes(70)), Reason.BAD_SIGNATURE_ENCODING),
    ("signature-unpadded", HEADER_SIGNATURE, b64(bytes(64)).rstrip("="), Reason.BAD_SIGNATURE_ENCODING),
    (
        "signature-urlsafe",
        HEADER_SIGNATURE,
        base64.urlsafe_b64encode(b"\xff" * 64).decode(),
        Reason.BAD_SIGNATURE_ENCODING,
    ),
    (
        "signature-r-overflow",
        HEADER_SIGNATURE,
        b64(b"\xff" * 32 + b"\x01" * 32),
        Reason.BAD_SIGNATURE_ENCODING,
    ),
    ("signature-zero", HEADER_SIGNATURE, b64(bytes(64)), Reason.BAD_SIGNATURE),
    ("pubkey-not-base64", HEADER_PUBKEY, "%%%%", Reason.BAD_PUBKEY),
    ("pubkey-32-bytes", HEADER_PUBKEY, b64(bytes(32)), Reason.BAD_PUBKEY),
    ("pubkey-uncompressed", HEADER_PUBKEY, b64(b"\x04" + bytes(64)), Reason.BAD_PUBKEY),
    ("pubkey-bad-prefix", HEADER_PUBKEY, b64(b"\x05" + bytes(32)), Reason.BAD_PUBKEY),
    ("pubkey-not-on-curve", HEADER_PUBKEY, b64(_not_on_curve_x()), Reason.BAD_PUBKEY),
    ("address-other-prefix", HEADER_ADDRESS, address_from_pubkey(OTHER_PUBKEY, "cosmos"), Reason.BAD_ADDRESS),
    ("address-garbage", HEADER_ADDRESS, "not-an-address", Reason.BAD_ADDRESS),
]


@pytest.mark.parametrize(
    ("header", "value", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_fields_are_refused(header, value, reason):
    signed = make_signed()
    signed.refused(reason, headers=with_header(signed.headers, header, value))


def test_uppercase_address_is_refused():
    signed = make_signed()
    upper = signed.headers[HEADER_ADDRESS].upper()
    signed.refused(Reason.BAD_ADDRESS, headers=with_header(signed.headers, HEADER_ADDRESS, upper))


def test_error_carries_code_and_message():
    error = make_signed().refused(Reason.STALE, now_ms=NOW_MS + 10**9)
    assert error.reason_code == "timestamp_stale"
    assert str(error) == error.message
    assert "WalletAuthError('timestamp_stale'" in repr(error)


# --- extracting the fields ----------------------------------------------------------------------


def test_fields_from_headers_are_case_insensitive_and_stripped():
    signed = make_signed()
    lowered = {name.lower(): f" {value} " for name, value in signed.headers.items()}
    fields = wallet_fields_from_headers(lowered)
    assert fields == {
        "address": signed.headers[HEADER_ADDRESS],
        "timestamp": signed.headers[HEADER_TIMESTAMP],
        "nonce": signed.headers[HEADER_NONCE],
        "signature": signed.headers[HEADER_SIGNATURE],
        "pubkey": signed.headers[HEADER_PUBKEY],
    }


def test_no_wallet_fields_means_none():
    assert wallet_fields_from_headers({"Content-Type": "application/json"}) is None
    assert wallet_fields_from_query({"since": "3"}) is None


def test_hmac_headers_alone_are_not_a_wallet_request():
    # X-VE-Timestamp and X-VE-Signature are shared with the provider HMAC scheme.
    hmac_headers = {"X-VE-Principal": "vep_1", HEADER_TIMESTAMP: "1764312000", HEADER_SIGNATURE: "ab" * 32}
    assert wallet_fields_from_headers(hmac_headers) is None
    assert wallet_fields_from_query({"ve_principal": "vep_1", "ve_ts": "1", "ve_hmac": "ab"}) is None


def test_partial_wallet_headers_are_reported_missing():
    fields = wallet_fields_from_headers({HEADER_ADDRESS: "ve1xyz"})
    assert fields == {
        "address": "ve1xyz",
        "timestamp": None,
        "nonce": None,
        "signature": None,
        "pubkey": None,
    }
    with pytest.raises(WalletAuthError) as excinfo:
        verify_signed_request(
            method="GET",
            path="/",
            headers_or_params=fields,
            raw_body=b"",
            content_type=None,
            now_ms=NOW_MS,
            chain_id=CHAIN_ID,
            prefix=PREFIX,
        )
    assert excinfo.value.reason_code == Reason.MISSING


def test_websocket_query_parameters_verify():
    signed = make_signed(method="GET", path="/api/v1/tickets/abc/updates", body=b"")
    params = wallet_query_params(signed.headers)
    assert set(params) == {"ve_address", "ve_ts", "ve_nonce", "ve_sig", "ve_pub"}
    # parse_qs-style lists are accepted too.
    for query in (params, {name: [value] for name, value in params.items()}):
        fields = wallet_fields_from_query(query)
        assert fields == wallet_fields_from_headers(signed.headers)


# --- properties ---------------------------------------------------------------------------------

paths = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%", min_size=1, max_size=12), max_size=5
).map(lambda parts: "/" + "/".join(parts))
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=15,
).map(lambda value: json.dumps(value, ensure_ascii=False).encode())
bodies = st.binary(max_size=200) | json_bodies
nonces = st.text(alphabet="ABCabc012_-", min_size=8, max_size=128)
keys = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(lambda k: k.to_bytes(32, "big"))


@settings(max_examples=60, deadline=None)
@given(
    key=keys,
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "put"]),
    path=paths,
    body=bodies,
    nonce=nonces,
    skew=st.integers(min_value=-60_000, max_value=300_000),
)
def test_sign_then_verify_round_trip(key, method, path, body, nonce, skew):
    signed = make_signed(key=key, method=method, path=path, body=body, nonce=nonce)
    result = signed.check(method=method.upper(), now_ms=NOW_MS + skew)
    assert result.address == address_from_pubkey(public_key_of(key), PREFIX)
    signature = base64.b64decode(signed.headers[HEADER_SIGNATURE])
    assert int.from_bytes(signature[32:], "big") <= SECP256K1_ORDER // 2  # always low-S


@settings(max_examples=40, deadline=None)
@given(body=bodies, other=bodies)
def test_any_other_body_is_refused(body, other):
    if body_hash(body, None) == body_hash(other, None):
        return  # same canonical JSON (or both empty): legitimately the same signed request
    make_signed(body=body).refused(Reason.BAD_SIGNATURE, body=other)

"""VirtEngine wallet-signed requests: canonical JSON, the signed payload, and its verification.

This is the portal's authentication scheme (DESIGN, "Identities and authentication"). A client holding a
secp256k1 wallet key sends five headers (or, on a WebSocket, five query parameters)::

    X-VE-Address    bech32 address of the key            (ve_address)
    X-VE-Timestamp  Unix time in milliseconds             (ve_ts)
    X-VE-Nonce      8–128 chars of [A-Za-z0-9_-]          (ve_nonce)
    X-VE-Signature  base64 of the 64-byte r‖s signature   (ve_sig)
    X-VE-PubKey     base64 of the 33-byte compressed key  (ve_pub)

and signs, as an ADR-036 amino sign doc, the string::

    {"method":"POST","path":"/api/v1/tickets","timestamp":1764312000000,"nonce":"…","body_hash":"…"}

Everything here mirrors VirtEngine's TypeScript client (``wallet-sign.ts``) and ``@cosmjs/amino``
byte for byte; ``reference/wallet-auth-vectors.json`` pins it. Notable consequences of that contract:

* the signature covers the URL *path* only (the client signs ``url.pathname``), never the query string;
* the path is interpolated into the payload verbatim, not JSON-escaped, exactly as the client does;
* nonce single use is *not* checked here: the caller checks ``address:nonce`` against a shared store.

The module is pure: no ORM and no HTTP framework. Callers pass the raw path, body and a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import coincurve
from coincurve.ecdsa import (
    cdata_to_der,
    der_to_cdata,
    deserialize_compact,
    serialize_compact,
    signature_normalize,
)

from core.addresses import address_from_pubkey, is_valid_address
from core.formats import canonical_json
from core.signing_common import SignatureRefused, extract_fields

HEADER_ADDRESS = "X-VE-Address"
HEADER_TIMESTAMP = "X-VE-Timestamp"
HEADER_NONCE = "X-VE-Nonce"
HEADER_SIGNATURE = "X-VE-Signature"
HEADER_PUBKEY = "X-VE-PubKey"

QUERY_ADDRESS = "ve_address"
QUERY_TIMESTAMP = "ve_ts"
QUERY_NONCE = "ve_nonce"
QUERY_SIGNATURE = "ve_sig"
QUERY_PUBKEY = "ve_pub"

# The normalised field names that wallet_fields_from_* return and verify_signed_request reads.
FIELD_HEADERS: dict[str, str] = {
    "address": HEADER_ADDRESS,
    "timestamp": HEADER_TIMESTAMP,
    "nonce": HEADER_NONCE,
    "signature": HEADER_SIGNATURE,
    "pubkey": HEADER_PUBKEY,
}
FIELD_QUERY: dict[str, str] = {
    "address": QUERY_ADDRESS,
    "timestamp": QUERY_TIMESTAMP,
    "nonce": QUERY_NONCE,
    "signature": QUERY_SIGNATURE,
    "pubkey": QUERY_PUBKEY,
}
# X-VE-Timestamp and X-VE-Signature (and ve_ts) are shared with the provider HMAC scheme, so only
# these fields say "this is a wallet request"; see wallet_fields_from_headers.
_WALLET_ONLY_FIELDS = ("address", "nonce", "pubkey")

DEFAULT_MAX_AGE_MS = 300_000
DEFAULT_MAX_SKEW_MS = 60_000

_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")
# No sign, no leading zeros: the payload carries the number, so two spellings of one timestamp would
# both verify; refusing all but the canonical one keeps the header exactly what was signed.
_TIMESTAMP_MS_RE = re.compile(r"0|[1-9][0-9]{0,15}")
_SIGNATURE_B64_LEN = 88  # base64 of 64 bytes
_PUBKEY_B64_LEN = 44  # base64 of 33 bytes


class Reason(StrEnum):
    """Machine-readable reason a wallet-signed request was refused (``WalletAuthError.reason_code``)."""

    MISSING = "missing_field"
    BAD_TIMESTAMP = "malformed_timestamp"
    BAD_NONCE = "malformed_nonce"
    BAD_SIGNATURE_ENCODING = "malformed_signature"
    BAD_PUBKEY = "malformed_pubkey"
    BAD_ADDRESS = "malformed_address"
    ADDRESS_MISMATCH = "address_mismatch"
    STALE = "timestamp_stale"
    FUTURE = "timestamp_future"
    HIGH_S = "signature_high_s"
    BAD_SIGNATURE = "signature_invalid"


class WalletAuthError(SignatureRefused):
    """A wallet-signed request was refused. Callers render it as 401 with ``reason_code``."""


@dataclass(frozen=True, slots=True)
class VerifiedWallet:
    """Who signed a request that passed verification (the nonce is still to be claimed)."""

    address: str
    pubkey: bytes
    nonce: str
    timestamp_ms: int


def _reject_constant(name: str) -> Any:
    # JSON.parse refuses NaN/Infinity; Python's json accepts them unless told otherwise.
    raise ValueError(f"{name} is not JSON")


def body_hash(raw_body: bytes, content_type: str | None) -> str:
    """``body_hash`` of the signed payload: "" for no body, else hex SHA-256 (see below).

    If the body is UTF-8 JSON (strict: what ``JSON.parse`` accepts, one value, surrounding
    whitespace allowed) the hash is over ``canonical_json`` of it, so key order and spacing on the wire
    do not matter; otherwise it is over the raw bytes. The decision deliberately ignores
    ``content_type`` (accepted so callers can pass what they have): the VirtEngine client hashes its
    JSON-serialised body whatever header it sends, and proxies rewrite Content-Type. A body too deeply
    nested to canonicalise is hashed raw.
    """
    del content_type  # see the docstring: the hash never depends on it
    if not raw_body:
        return ""
    try:
        parsed = json.loads(raw_body.decode("utf-8"), parse_constant=_reject_constant)
        canonical = canonical_json(parsed)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError and ints beyond Python's digit limit.
        return hashlib.sha256(raw_body).hexdigest()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- the signed payload --------------------------------------------------------------------------


def signed_payload(method: str, path: str, timestamp_ms: int, nonce: str, body_hash: str) -> str:
    """The string the client signs, keys in this order, interpolated verbatim like the TS client."""
    return (
        f'{{"method":"{method.upper()}","path":"{path}","timestamp":{int(timestamp_ms)},'
        f'"nonce":"{nonce}","body_hash":"{body_hash}"}}'
    )


def amino_sign_bytes(data_b64: str, signer: str, chain_id: str) -> bytes:
    """ADR-036 ``sign/MsgSignData`` amino sign doc as ``@cosmjs/amino`` serialises it.

    That is ``sortedJsonStringify`` (sorted keys, no spaces) followed by cosmjs's escaping of ``&<>``
    as ``\\u0026 \\u003c \\u003e`` (to match Go's encoding/json). The escaping only matters for an
    exotic chain ID; base64 data and bech32 signers never contain those characters.
    """
    doc = {
        "account_number": "0",
        "chain_id": chain_id,
        "fee": {"amount": [], "gas": "0"},
        "memo": "",
        "msgs": [{"type": "sign/MsgSignData", "value": {"data": data_b64, "signer": signer}}],
        "sequence": "0",
    }
    serialised = canonical_json(doc).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return serialised.encode("utf-8")


def request_sign_bytes(
    *, method: str, path: str, timestamp_ms: int, nonce: str, body_hash: str, address: str, chain_id: str
) -> bytes:
    """The exact bytes whose SHA-256 a wallet signs for one request."""
    payload = signed_payload(method, path, timestamp_ms, nonce, body_hash)
    data_b64 = base64.b64encode(payload.encode("utf-8")).decode("ascii")
    return amino_sign_bytes(data_b64, address, chain_id)


# --- field extraction ----------------------------------------------------------------------------


def _extract(source: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str | None] | None:
    fields = extract_fields(source, names)
    if all(fields[field] is None for field in _WALLET_ONLY_FIELDS):
        return None
    return fields


def wallet_fields_from_headers(headers: Mapping[str, Any]) -> dict[str, str | None] | None:
    """``{"address", "timestamp", "nonce", "signature", "pubkey"}`` from ``X-VE-*`` headers.

    Header names match case-insensitively (a plain dict works as well as ``request.headers``).
    Returns None when the request carries none of the wallet-only headers (address, nonce, pubkey):
    the timestamp and signature headers are shared with the HMAC scheme, so their presence alone
    must let the caller fall through to it. Absent fields within a wallet request are None.
    """
    return _extract(headers, FIELD_HEADERS)


def wallet_fields_from_query(params: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The same mapping from WebSocket query parameters ``ve_address``, ``ve_ts``, … (see above)."""
    return _extract(params, FIELD_QUERY)


def wallet_query_params(headers: Mapping[str, str]) -> dict[str, str]:
    """The five ``X-VE-*`` headers of ``sign_request`` renamed to their WebSocket query parameters."""
    return {FIELD_QUERY[field]: headers[header] for field, header in FIELD_HEADERS.items()}


# --- verification --------------------------------------------------------------------------------


def _decode_b64(value: str, expected_len: int, reason: Reason, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WalletAuthError(reason, f"{what} is not valid base64.") from exc
    # Refuse non-canonical spellings (stray padding bits) so the header is exactly what was signed.
    if len(raw) != expected_len or base64.b64encode(raw).decode("ascii") != value:
        raise WalletAuthError(reason, f"{what} must be the base64 of {expected_len} bytes.")
    return raw


def verify_signature(
    *, sign_bytes: bytes, signature_b64: str, pubkey_b64: str, address: str, prefix: str, what: str
) -> bytes:
    """Check that `address` signed `sign_bytes` (an amino sign doc) with the key `pubkey_b64`; return the key.

    The key must be a compressed secp256k1 point whose address is `address`; the signature a base64
    64-byte r||s in low-S form (cosmjs and the Cosmos SDK only produce and accept those) over SHA-256 of
    the bytes. Cheap format checks run before any curve operation.
    """
    signature = _decode_b64(signature_b64, 64, Reason.BAD_SIGNATURE_ENCODING, "Signature")
    pubkey = _decode_b64(pubkey_b64, 33, Reason.BAD_PUBKEY, "Public key")
    if pubkey[0] not in (2, 3):
        raise WalletAuthError(Reason.BAD_PUBKEY, "Public key must be a compressed secp256k1 key.")
    if not is_valid_address(address, prefix):
        raise WalletAuthError(Reason.BAD_ADDRESS, f"Address is not a bech32 '{prefix}' account address.")
    try:
        public_key = coincurve.PublicKey(pubkey)
    except ValueError as exc:
        raise WalletAuthError(Reason.BAD_PUBKEY, "Public key is not a point on secp256k1.") from exc
    if address_from_pubkey(pubkey, prefix) != address:
        raise WalletAuthError(Reason.ADDRESS_MISMATCH, "Address does not belong to the public key.")
    try:
        parsed_signature = deserialize_compact(signature)
    except ValueError as exc:  # r or s not below the group order
        raise WalletAuthError(Reason.BAD_SIGNATURE_ENCODING, "Signature is not a valid r||s pair.") from exc
    was_high_s, _ = signature_normalize(parsed_signature)
    if was_high_s:
        # The high-S twin of a valid signature is a malleated copy.
        raise WalletAuthError(Reason.HIGH_S, "Signature must be in low-S form.")
    digest = hashlib.sha256(sign_bytes).digest()
    if not public_key.verify(cdata_to_der(parsed_signature), digest, hasher=None):
        raise WalletAuthError(Reason.BAD_SIGNATURE, f"Signature does not match the {what}.")
    return pubkey


def data_sign_bytes(data: str, signer: str, chain_id: str) -> bytes:
    """The sign doc of arbitrary text: what Keplr's `signArbitrary(chainId, signer, data)` signs with
    `chain_id` "" (strict ADR-036), and what a portal's `signAmino` signs with the chain's ID."""
    return amino_sign_bytes(base64.b64encode(data.encode("utf-8")).decode("ascii"), signer, chain_id)


def verify_signed_request(
    *,
    method: str,
    path: str,
    headers_or_params: Mapping[str, str | None],
    raw_body: bytes,
    content_type: str | None,
    now_ms: int,
    chain_id: str,
    prefix: str,
    max_age_ms: int = DEFAULT_MAX_AGE_MS,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    precomputed_body_hash: str | None = None,
) -> VerifiedWallet:
    """Check a wallet-signed request and return its signer, or raise ``WalletAuthError``.

    ``precomputed_body_hash`` replaces ``body_hash(raw_body, …)`` for bodies hashed while streaming
    (multipart uploads are never held in memory whole).

    ``headers_or_params`` is the mapping from ``wallet_fields_from_headers``/``_query``. ``path`` is
    the raw, still percent-encoded URL path without the query string (what the client's
    ``url.pathname`` was). Cheap format checks run before any curve operation. The nonce is only
    checked for shape; claiming it once per ``address:nonce`` is the caller's job.
    """
    fields = {name: (headers_or_params.get(name) or "") for name in FIELD_HEADERS}
    missing = [FIELD_HEADERS[name] for name, value in fields.items() if not value]
    if missing:
        raise WalletAuthError(
            Reason.MISSING, f"Missing wallet authentication field(s): {', '.join(missing)}."
        )

    address, timestamp_text, nonce = fields["address"], fields["timestamp"], fields["nonce"]
    if not _TIMESTAMP_MS_RE.fullmatch(timestamp_text):
        raise WalletAuthError(Reason.BAD_TIMESTAMP, "Timestamp must be Unix milliseconds.")
    timestamp_ms = int(timestamp_text)
    if not _NONCE_RE.fullmatch(nonce):
        raise WalletAuthError(Reason.BAD_NONCE, "Nonce must be 8-128 characters of [A-Za-z0-9_-].")
    if now_ms - timestamp_ms > max_age_ms:
        raise WalletAuthError(Reason.STALE, "Request timestamp is too old.")
    if timestamp_ms - now_ms > max_skew_ms:
        raise WalletAuthError(Reason.FUTURE, "Request timestamp is in the future.")
    sign_bytes = request_sign_bytes(
        method=method,
        path=path,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        body_hash=precomputed_body_hash
        if precomputed_body_hash is not None
        else body_hash(raw_body, content_type),
        address=address,
        chain_id=chain_id,
    )
    pubkey = verify_signature(
        sign_bytes=sign_bytes,
        signature_b64=fields["signature"],
        pubkey_b64=fields["pubkey"],
        address=address,
        prefix=prefix,
        what="request",
    )
    return VerifiedWallet(address=address, pubkey=pubkey, nonce=nonce, timestamp_ms=timestamp_ms)


# --- client side ---------------------------------------------------------------------------------


def generate_private_key() -> bytes:
    """A fresh random 32-byte secp256k1 private key (tests, benches, the CLI)."""
    return coincurve.PrivateKey().secret


def public_key_of(private_key: bytes) -> bytes:
    """The 33-byte compressed public key of ``private_key``."""
    return coincurve.PrivateKey(private_key).public_key.format(compressed=True)


def new_nonce() -> str:
    """A nonce like the VirtEngine client's: 16 random bytes in hex."""
    return secrets.token_hex(16)


def sign_request(
    *,
    private_key: bytes,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str | None,
    timestamp_ms: int,
    nonce: str,
    chain_id: str,
    prefix: str,
) -> dict[str, str]:
    """The five ``X-VE-*`` headers a VirtEngine client (cosmjs ``signAmino``) would send.

    libsecp256k1 signs with RFC 6979 deterministic nonces and always emits low-S, like cosmjs, so the
    same key and request give the same signature as the reference vectors.
    """
    key = coincurve.PrivateKey(private_key)
    pubkey = key.public_key.format(compressed=True)
    address = address_from_pubkey(pubkey, prefix)
    sign_bytes = request_sign_bytes(
        method=method,
        path=path,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        body_hash=body_hash(body or b"", content_type),
        address=address,
        chain_id=chain_id,
    )
    return {
        HEADER_ADDRESS: address,
        HEADER_TIMESTAMP: str(int(timestamp_ms)),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign_document(private_key, sign_bytes),
        HEADER_PUBKEY: base64.b64encode(pubkey).decode("ascii"),
    }


def sign_document(private_key: bytes, sign_bytes: bytes) -> str:
    """A wallet's signature of an amino sign doc: base64 of the 64-byte low-S r||s over its SHA-256."""
    der = coincurve.PrivateKey(private_key).sign(hashlib.sha256(sign_bytes).digest(), hasher=None)
    return base64.b64encode(serialize_compact(der_to_cdata(der))).decode("ascii")

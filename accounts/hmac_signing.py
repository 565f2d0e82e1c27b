"""HMAC request signing for provider machines (VirtEngine's provider credential scheme).

A provider's daemon holds a principal and a shared secret and sends::

    X-VE-Principal  the credential's principal
    X-VE-Timestamp  Unix time in *seconds* (accepted within ±300 s)
    X-VE-Signature  hex HMAC-SHA256(secret, "METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP")

PATH is the raw (percent-encoded) path and RAWQUERY the raw query string without ``?``, both exactly
as on the wire.

That message (VirtEngine's format, kept for compatibility) covers neither the body nor a nonce: within
the ±300 s window a captured request can be replayed, with another body. The stronger version adds two
headers and signs them too::

    X-VE-Nonce           16-128 characters of [A-Za-z0-9_-], accepted once per principal
    X-VE-Content-SHA256  lowercase hex SHA-256 of the raw body bytes (of b"" for no body)
    X-VE-Signature       hex HMAC-SHA256(secret,
                             "METHOD\nPATH\nRAWQUERY\nPRINCIPAL\nTIMESTAMP\nNONCE\nCONTENT_SHA256")

A request carrying either header is verified as the stronger version (both then required); a credential
or the installation may require it (``require_strong``). Browsers cannot set headers on a WebSocket, so there the values travel as the
query parameters ``ve_principal``, ``ve_ts`` and ``ve_hmac`` (and ``ve_nonce``, ``ve_content_sha256``); the signed RAWQUERY is then the query
string with those parameters removed and every other parameter kept, verbatim and in order
(``raw_query_without_auth``). That is what a client naturally signs: the query before it appends the
credentials.

The module is pure: no ORM and no HTTP framework; the caller looks up the secret by principal and
passes the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote_plus

from core.signing_common import SignatureRefused, extract_fields

HEADER_PRINCIPAL = "X-VE-Principal"
HEADER_TIMESTAMP = "X-VE-Timestamp"
HEADER_SIGNATURE = "X-VE-Signature"
HEADER_NONCE = "X-VE-Nonce"
HEADER_CONTENT_SHA256 = "X-VE-Content-SHA256"

QUERY_PRINCIPAL = "ve_principal"
QUERY_TIMESTAMP = "ve_ts"
QUERY_SIGNATURE = "ve_hmac"
QUERY_NONCE = "ve_nonce"
QUERY_CONTENT_SHA256 = "ve_content_sha256"
AUTH_QUERY_PARAMS = frozenset(
    {QUERY_PRINCIPAL, QUERY_TIMESTAMP, QUERY_SIGNATURE, QUERY_NONCE, QUERY_CONTENT_SHA256}
)
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

DEFAULT_WINDOW_S = 300

# No sign, no leading zeros: one timestamp, one spelling (the message carries the text).
_TIMESTAMP_S_RE = re.compile(r"0|[1-9][0-9]{0,11}")
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")
# The message is newline-separated, so a principal must not be able to smuggle in a separator.
_PRINCIPAL_RE = re.compile(r"[\x21-\x7e]{1,256}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class Reason(StrEnum):
    """Machine-readable reason an HMAC-signed request was refused (``HmacAuthError.reason_code``)."""

    MISSING = "missing_field"
    BAD_PRINCIPAL = "malformed_principal"
    BAD_TIMESTAMP = "malformed_timestamp"
    BAD_SIGNATURE_ENCODING = "malformed_signature"
    STALE = "timestamp_stale"
    FUTURE = "timestamp_future"
    BAD_SIGNATURE = "signature_invalid"
    BAD_NONCE = "malformed_nonce"
    BAD_CONTENT_HASH = "malformed_content_sha256"
    BODY_MISMATCH = "content_sha256_mismatch"
    STRONG_REQUIRED = "strong_signature_required"
    NONCE_REUSED = "nonce_reused"


class HmacAuthError(SignatureRefused):
    """An HMAC-signed request was refused. Callers render it as 401 with ``reason_code``."""


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


@dataclass(frozen=True)
class Strong:
    """The stronger version's extra signed fields: a single-use nonce and the body's SHA-256 (hex)."""

    nonce: str
    content_sha256: str

    @classmethod
    def of(cls, body: bytes | None, nonce: str | None = None) -> Strong:
        """The fields for sending `body` (client side), with a fresh nonce unless one is given."""
        return cls(nonce or secrets.token_urlsafe(24), hashlib.sha256(body or b"").hexdigest())


def hmac_message(  # noqa: PLR0917 - the message fields in signing order
    method: str,
    path: str,
    raw_query: str,
    principal: str,
    timestamp: int | str,
    strong: Strong | None = None,
) -> bytes:
    """``METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP`` (then ``\\nNONCE\\nCONTENT_SHA256`` for the
    stronger version) as UTF-8; the method is uppercased."""
    parts = [method.upper(), path, raw_query, principal, str(timestamp)]
    if strong is not None:
        parts += [strong.nonce, strong.content_sha256]
    return "\n".join(parts).encode("utf-8")


def hmac_sign(  # noqa: PLR0917 - credential, then the message fields in signing order
    secret: str | bytes, method: str, path: str, raw_query: str, principal: str, timestamp: int | str
) -> str:
    """Lowercase hex HMAC-SHA256 of ``hmac_message(...)`` under ``secret`` (VirtEngine's format)."""
    return _hex_digest(secret, hmac_message(method, path, raw_query, principal, timestamp))


def _hex_digest(secret: str | bytes, message: bytes) -> str:
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def hmac_headers(  # noqa: PLR0917 - credential, then the message fields in signing order
    principal: str,
    secret: str | bytes,
    method: str,
    path: str,
    raw_query: str,
    timestamp: int | str,
    strong: Strong | None = None,
) -> dict[str, str]:
    """The ``X-VE-*`` headers a provider sends (client side: tests, benches, the CLI); with `strong`, the
    stronger version's nonce and body hash as well."""
    headers = {
        HEADER_PRINCIPAL: principal,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: _hex_digest(
            secret, hmac_message(method, path, raw_query, principal, timestamp, strong)
        ),
    }
    if strong is not None:
        headers[HEADER_NONCE] = strong.nonce
        headers[HEADER_CONTENT_SHA256] = strong.content_sha256
    return headers


def hmac_query(  # noqa: PLR0917 - credential, then the message fields in signing order
    principal: str, secret: str | bytes, method: str, path: str, raw_query: str, timestamp: int | str
) -> str:
    """``raw_query`` with ``ve_principal``, ``ve_ts`` and ``ve_hmac`` appended (WebSocket clients).

    The signature covers ``raw_query`` as given, which is exactly what ``raw_query_without_auth``
    recovers on the server. For the stronger version: ``hmac_query_of(hmac_headers(..., strong), raw_query)``.
    """
    return hmac_query_of(hmac_headers(principal, secret, method, path, raw_query, timestamp), raw_query)


def hmac_query_of(headers: Mapping[str, str], raw_query: str) -> str:
    """``raw_query`` with the values of `headers` (from ``hmac_headers`` for that query) appended as
    ``ve_principal``, ``ve_ts``, ``ve_hmac`` and, for the stronger version, ``ve_nonce`` and
    ``ve_content_sha256``."""
    names = {
        HEADER_PRINCIPAL: QUERY_PRINCIPAL,
        HEADER_TIMESTAMP: QUERY_TIMESTAMP,
        HEADER_SIGNATURE: QUERY_SIGNATURE,
        HEADER_NONCE: QUERY_NONCE,
        HEADER_CONTENT_SHA256: QUERY_CONTENT_SHA256,
    }
    auth = "&".join(f"{names[header]}={quote(value, safe='')}" for header, value in headers.items())
    return f"{raw_query}&{auth}" if raw_query else auth


def raw_query_without_auth(raw_query: str) -> str:
    """The signed RAWQUERY of a WebSocket request: the query minus the three auth parameters.

    Works on the raw ``&``-separated segments so the remaining parameters keep their exact encoding
    and order; parameter names are compared after percent-decoding.
    """
    if not raw_query:
        return ""
    kept = [
        segment
        for segment in raw_query.split("&")
        if unquote_plus(segment.partition("=")[0]) not in AUTH_QUERY_PARAMS
    ]
    return "&".join(kept)


def _extract(source: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str | None] | None:
    fields = extract_fields(source, names)
    # The timestamp and signature names are shared with the wallet scheme; only the principal says
    # "this is an HMAC request".
    if fields["principal"] is None:
        return None
    return fields


def hmac_fields_from_headers(headers: Mapping[str, Any]) -> dict[str, str | None] | None:
    """``{"principal", "timestamp", "signature", "nonce", "content_sha256"}`` from the headers, or None
    without X-VE-Principal.

    Names match case-insensitively. X-VE-Timestamp and X-VE-Signature alone mean a wallet request (or
    none), so the caller can fall through to another scheme. ``nonce`` and ``content_sha256`` are None
    for VirtEngine's format.
    """
    return _extract(
        headers,
        {
            "principal": HEADER_PRINCIPAL,
            "timestamp": HEADER_TIMESTAMP,
            "signature": HEADER_SIGNATURE,
            "nonce": HEADER_NONCE,
            "content_sha256": HEADER_CONTENT_SHA256,
        },
    )


def hmac_fields_from_query(params: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The same mapping from ``ve_principal``, ``ve_ts``, ``ve_hmac``, ``ve_nonce`` and
    ``ve_content_sha256``, or None without a principal.

    Verify such a request against ``raw_query_without_auth(raw_query)``.
    """
    return _extract(
        params,
        {
            "principal": QUERY_PRINCIPAL,
            "timestamp": QUERY_TIMESTAMP,
            "signature": QUERY_SIGNATURE,
            "nonce": QUERY_NONCE,
            "content_sha256": QUERY_CONTENT_SHA256,
        },
    )


def check_principal(principal: str | None) -> str:
    """The principal if it is well-formed (before anyone looks it up), else ``HmacAuthError``."""
    if not principal:
        raise HmacAuthError(Reason.MISSING, "Missing HMAC authentication field(s).")
    if not _PRINCIPAL_RE.fullmatch(principal):
        raise HmacAuthError(Reason.BAD_PRINCIPAL, "Principal must be 1-256 printable ASCII characters.")
    return principal


def _strong_fields(nonce: str | None, content_sha256: str | None, *, require_strong: bool) -> Strong | None:
    if not nonce and not content_sha256:
        if require_strong:
            raise HmacAuthError(
                Reason.STRONG_REQUIRED,
                "This credential must sign a nonce and the body (X-VE-Nonce, X-VE-Content-SHA256).",
            )
        return None
    if not nonce or not content_sha256:
        raise HmacAuthError(Reason.MISSING, "Send both X-VE-Nonce and X-VE-Content-SHA256, or neither.")
    if not _NONCE_RE.fullmatch(nonce):
        raise HmacAuthError(Reason.BAD_NONCE, "Nonce must be 16-128 characters of [A-Za-z0-9_-].")
    if not _SHA256_RE.fullmatch(content_sha256):
        raise HmacAuthError(Reason.BAD_CONTENT_HASH, "Content SHA-256 must be 64 lowercase hex characters.")
    return Strong(nonce, content_sha256)


def verify_hmac(
    *,
    secret: str | bytes,
    method: str,
    path: str,
    raw_query: str,
    principal: str | None,
    timestamp_str: str | None,
    signature_hex: str | None,
    now_s: int,
    window_s: int = DEFAULT_WINDOW_S,
    nonce: str | None = None,
    content_sha256: str | None = None,
    body_sha256: Callable[[], str] | None = None,
    require_strong: bool = False,
) -> int:
    """Check one HMAC-signed request and return its timestamp, or raise ``HmacAuthError``.

    The caller has already found ``secret`` by ``principal`` (an unknown principal should be refused
    the same way as a bad signature, so as not to reveal which principals exist). With ``nonce`` and
    ``content_sha256`` the request is checked as the stronger version: ``body_sha256`` computes the hash
    of the body actually received (only then called), and the caller must claim the nonce once.
    ``require_strong`` refuses VirtEngine's format.
    """
    if not principal or not timestamp_str or not signature_hex:
        raise HmacAuthError(Reason.MISSING, "Missing HMAC authentication field(s).")
    check_principal(principal)
    if not _TIMESTAMP_S_RE.fullmatch(timestamp_str):
        raise HmacAuthError(Reason.BAD_TIMESTAMP, "Timestamp must be Unix seconds.")
    timestamp = int(timestamp_str)
    if now_s - timestamp > window_s:
        raise HmacAuthError(Reason.STALE, "Request timestamp is too old.")
    if timestamp - now_s > window_s:
        raise HmacAuthError(Reason.FUTURE, "Request timestamp is in the future.")
    if not _SIGNATURE_RE.fullmatch(signature_hex):
        raise HmacAuthError(Reason.BAD_SIGNATURE_ENCODING, "Signature must be 64 hex characters.")
    strong = _strong_fields(nonce, content_sha256, require_strong=require_strong)

    message = hmac_message(method, path, raw_query, principal, timestamp_str, strong)
    expected = hmac.new(_as_bytes(secret), message, hashlib.sha256).digest()
    # Compare the decoded bytes in constant time; hex case does not matter.
    if not hmac.compare_digest(expected, bytes.fromhex(signature_hex)):
        raise HmacAuthError(Reason.BAD_SIGNATURE, "Signature does not match the request.")
    if strong is not None and body_sha256 is not None and strong.content_sha256 != body_sha256():
        raise HmacAuthError(Reason.BODY_MISMATCH, "X-VE-Content-SHA256 does not match the body.")
    return timestamp

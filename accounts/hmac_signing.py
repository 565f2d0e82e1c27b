"""HMAC request signing for provider machines (VirtEngine's provider credential scheme).

A provider's daemon holds a principal and a shared secret and sends::

    X-VE-Principal  the credential's principal
    X-VE-Timestamp  Unix time in *seconds* (accepted within ±300 s)
    X-VE-Signature  hex HMAC-SHA256(secret, "METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP")

PATH is the raw (percent-encoded) path and RAWQUERY the raw query string without ``?``, both exactly
as on the wire. Browsers cannot set headers on a WebSocket, so there the three values travel as the
query parameters ``ve_principal``, ``ve_ts`` and ``ve_hmac``; the signed RAWQUERY is then the query
string with those three parameters removed and every other parameter kept, verbatim and in order
(``raw_query_without_auth``). That is what a client naturally signs: the query before it appends the
credentials.

The module is pure: no ORM and no HTTP framework; the caller looks up the secret by principal and
passes the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote_plus

from accounts.signing_common import SignatureRefused, extract_fields

HEADER_PRINCIPAL = "X-VE-Principal"
HEADER_TIMESTAMP = "X-VE-Timestamp"
HEADER_SIGNATURE = "X-VE-Signature"

QUERY_PRINCIPAL = "ve_principal"
QUERY_TIMESTAMP = "ve_ts"
QUERY_SIGNATURE = "ve_hmac"
AUTH_QUERY_PARAMS = frozenset({QUERY_PRINCIPAL, QUERY_TIMESTAMP, QUERY_SIGNATURE})

DEFAULT_WINDOW_S = 300

# No sign, no leading zeros: one timestamp, one spelling (the message carries the text).
_TIMESTAMP_S_RE = re.compile(r"0|[1-9][0-9]{0,11}")
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")
# The message is newline-separated, so a principal must not be able to smuggle in a separator.
_PRINCIPAL_RE = re.compile(r"[\x21-\x7e]{1,256}")


class Reason(StrEnum):
    """Machine-readable reason an HMAC-signed request was refused (``HmacAuthError.reason_code``)."""

    MISSING = "missing_field"
    BAD_PRINCIPAL = "malformed_principal"
    BAD_TIMESTAMP = "malformed_timestamp"
    BAD_SIGNATURE_ENCODING = "malformed_signature"
    STALE = "timestamp_stale"
    FUTURE = "timestamp_future"
    BAD_SIGNATURE = "signature_invalid"


class HmacAuthError(SignatureRefused):
    """An HMAC-signed request was refused. Callers render it as 401 with ``reason_code``."""


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def hmac_message(method: str, path: str, raw_query: str, principal: str, timestamp: int | str) -> bytes:
    """``METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP`` as UTF-8; the method is uppercased."""
    return "\n".join((method.upper(), path, raw_query, principal, str(timestamp))).encode("utf-8")


def hmac_sign(  # noqa: PLR0917 - credential, then the message fields in signing order
    secret: str | bytes, method: str, path: str, raw_query: str, principal: str, timestamp: int | str
) -> str:
    """Lowercase hex HMAC-SHA256 of ``hmac_message(...)`` under ``secret``."""
    message = hmac_message(method, path, raw_query, principal, timestamp)
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def hmac_headers(  # noqa: PLR0917 - credential, then the message fields in signing order
    principal: str, secret: str | bytes, method: str, path: str, raw_query: str, timestamp: int | str
) -> dict[str, str]:
    """The three ``X-VE-*`` headers a provider sends (client side: tests, benches, the CLI)."""
    return {
        HEADER_PRINCIPAL: principal,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: hmac_sign(secret, method, path, raw_query, principal, timestamp),
    }


def hmac_query(  # noqa: PLR0917 - credential, then the message fields in signing order
    principal: str, secret: str | bytes, method: str, path: str, raw_query: str, timestamp: int | str
) -> str:
    """``raw_query`` with ``ve_principal``, ``ve_ts`` and ``ve_hmac`` appended (WebSocket clients).

    The signature covers ``raw_query`` as given, which is exactly what ``raw_query_without_auth``
    recovers on the server.
    """
    signature = hmac_sign(secret, method, path, raw_query, principal, timestamp)
    auth = (
        f"{QUERY_PRINCIPAL}={quote(principal, safe='')}&{QUERY_TIMESTAMP}={timestamp}"
        f"&{QUERY_SIGNATURE}={signature}"
    )
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
    """``{"principal", "timestamp", "signature"}`` from the headers, or None without X-VE-Principal.

    Names match case-insensitively. X-VE-Timestamp and X-VE-Signature alone mean a wallet request (or
    none), so the caller can fall through to another scheme.
    """
    return _extract(
        headers, {"principal": HEADER_PRINCIPAL, "timestamp": HEADER_TIMESTAMP, "signature": HEADER_SIGNATURE}
    )


def hmac_fields_from_query(params: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The same mapping from ``ve_principal``, ``ve_ts`` and ``ve_hmac``, or None without a principal.

    Verify such a request against ``raw_query_without_auth(raw_query)``.
    """
    return _extract(
        params, {"principal": QUERY_PRINCIPAL, "timestamp": QUERY_TIMESTAMP, "signature": QUERY_SIGNATURE}
    )


def check_principal(principal: str | None) -> str:
    """The principal if it is well-formed (before anyone looks it up), else ``HmacAuthError``."""
    if not principal:
        raise HmacAuthError(Reason.MISSING, "Missing HMAC authentication field(s).")
    if not _PRINCIPAL_RE.fullmatch(principal):
        raise HmacAuthError(Reason.BAD_PRINCIPAL, "Principal must be 1-256 printable ASCII characters.")
    return principal


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
) -> int:
    """Check one HMAC-signed request and return its timestamp, or raise ``HmacAuthError``.

    The caller has already found ``secret`` by ``principal`` (an unknown principal should be refused
    the same way as a bad signature, so as not to reveal which principals exist).
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

    expected = hmac.new(
        _as_bytes(secret), hmac_message(method, path, raw_query, principal, timestamp_str), hashlib.sha256
    ).digest()
    # Compare the decoded bytes in constant time; hex case does not matter.
    if not hmac.compare_digest(expected, bytes.fromhex(signature_hex)):
        raise HmacAuthError(Reason.BAD_SIGNATURE, "Signature does not match the request.")
    return timestamp

"""DRF authentication for the three ways in, and the one way to get the acting party of a request.

Order matters: wallet signature, then provider HMAC, then the portal's session (with CSRF). The precedence
rule (core.signing_common.carries_signature): a request carrying any `X-VE-*` header, even an empty one,
is judged by its signature alone: a bad or incomplete signature is a 401, never a fall-through to the
session riding along. With X-VE-Address or X-VE-PubKey it is a wallet request; otherwise with an
X-VE-Principal an HMAC request (X-VE-Nonce belongs to both schemes); otherwise it is incomplete. Only a
request with no `X-VE-*` header reaches the session.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from django.core.exceptions import RequestDataTooBig
from django.utils.encoding import escape_uri_path
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import hmac_signing, throttling
from accounts.services import hmac_signature_verify, wallet_signature_verify
from core import wallet
from core.errors import django_refusal
from core.parties import Party
from core.signing_common import SignatureRefused, carries_signature
from providers.selectors import party_for_user

INCOMPLETE = (
    "Incomplete signature: an X-VE-* header was sent, so the request must be signed; send X-VE-Principal "
    "(provider HMAC) or X-VE-Address and X-VE-PubKey (wallet), or no X-VE-* header to use the session."
)


class PartyPrincipal:
    """`request.user` for callers authenticated by signature rather than a portal session."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, party: Party) -> None:
        self.party = party
        self.pk = party.user_id
        self.id = party.user_id

    def get_username(self) -> str:
        return self.party.label

    def __str__(self) -> str:
        return self.party.label


def _method(request: Request) -> str:
    """The request's method: Django sets it on every request it builds (its type allows None)."""
    return request.method or ""


def _raw_path(request: Request) -> str:
    """The still percent-encoded path, as the client's `url.pathname` was when it signed."""
    return escape_uri_path(request._request.path)


class _HashingStream:
    """Hashes a request body while Django's multipart parser streams it to temporary files."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size) if size is not None and size >= 0 else self._stream.read()
        self.sha256.update(chunk)
        self.size += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        line = self._stream.readline(size)
        self.sha256.update(line)
        self.size += len(line)
        return line

    def drain(self) -> None:
        while self.read(64 * 1024):
            pass


def _signed_body(request: Request) -> tuple[bytes, str | None]:
    """The request body for the signature check: raw bytes, or a streamed digest for multipart."""
    django_request = request._request
    content_type = django_request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        hashing = _HashingStream(django_request._stream)
        # Django reads the body through `read` and `readline` only, which the wrapper offers.
        django_request._stream = hashing  # type: ignore[assignment]
        _ = request.data  # parse now: files stream to temporary storage while hashed
        hashing.drain()
        return b"", hashing.sha256.hexdigest() if hashing.size else ""
    try:
        return django_request.body, None
    except RequestDataTooBig as error:
        raise (django_refusal(error) or error) from error


def _refuse(request: Request, error: SignatureRefused) -> exceptions.AuthenticationFailed:
    """A failed signature: counted against the client address (see accounts.throttling)."""
    throttling.auth_failure_record(request)
    return exceptions.AuthenticationFailed(error.message, code=str(error.reason_code))


def _not_over_failure_budget(request: Request) -> None:
    wait = throttling.auth_failures_wait(request)
    if wait is not None:
        raise exceptions.Throttled(wait, detail="Too many failed authentications from your address.")


def _is_strong_hmac(request: Request, fields: dict[str, str | None]) -> bool:
    return (
        fields["address"] is None
        and fields["pubkey"] is None
        and hmac_signing.HEADER_PRINCIPAL in request.headers
    )


def _body_sha256(request: Request) -> str:
    raw_body, digest = _signed_body(request)
    return digest if digest is not None else hashlib.sha256(raw_body).hexdigest()


class WalletSignatureAuthentication(authentication.BaseAuthentication):
    """VirtEngine wallet-signed requests (ADR-036 over the request, single-use nonces)."""

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[PartyPrincipal, Party] | None:
        fields = wallet.wallet_fields_from_headers(request.headers)
        if fields is None or _is_strong_hmac(request, fields):
            return None
        _not_over_failure_budget(request)
        raw_body, digest = _signed_body(request)
        try:
            party = wallet_signature_verify(
                fields=fields,
                method=_method(request),
                path=_raw_path(request),
                raw_body=raw_body,
                body_digest=digest,
            )
        except wallet.WalletAuthError as error:
            raise _refuse(request, error) from error
        return PartyPrincipal(party), party

    def authenticate_header(self, request: Request) -> str:
        return 'VE-Signature realm="api", VE-HMAC realm="api"'


class ProviderHmacAuthentication(authentication.BaseAuthentication):
    """Provider machine credentials: HMAC-SHA256 over method, path, query, principal and timestamp (and,
    in the stronger version, a nonce and the body's SHA-256)."""

    def authenticate(self, request: Request) -> tuple[PartyPrincipal, Party] | None:
        fields = hmac_signing.hmac_fields_from_headers(request.headers)
        if fields is None:
            if carries_signature(request.headers):  # neither scheme's fields: never the session instead
                _not_over_failure_budget(request)
                raise _refuse(request, SignatureRefused(hmac_signing.Reason.MISSING, INCOMPLETE))
            return None
        _not_over_failure_budget(request)
        try:
            party = hmac_signature_verify(
                fields=fields,
                method=_method(request),
                path=_raw_path(request),
                raw_query=request._request.META.get("QUERY_STRING", ""),
                body_sha256=lambda: _body_sha256(request),
            )
        except hmac_signing.HmacAuthError as error:
            raise _refuse(request, error) from error
        return PartyPrincipal(party), party

    def authenticate_header(self, request: Request) -> str:
        return 'VE-HMAC realm="api"'


class PortalSessionAuthentication(authentication.SessionAuthentication):
    """The portal's own JavaScript: Django session cookie plus CSRF on unsafe methods."""


def request_party(request: Request) -> Party:
    """The party acting in this request; 403 for a signed-in user with no role at all."""
    cached: Party | None = getattr(request, throttling.PARTY_ATTRIBUTE, None)
    if cached is not None:
        return cached
    party = request.auth if isinstance(request.auth, Party) else party_for_user(request.user)
    if party is None:
        raise exceptions.PermissionDenied("Your account is not a customer, provider member or support agent.")
    setattr(request, throttling.PARTY_ATTRIBUTE, party)
    return party

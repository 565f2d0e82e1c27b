"""DRF authentication for the three ways in, and the one way to get the acting party of a request.

Order matters: wallet signature, then provider HMAC, then the portal's session (with CSRF). A request
carrying wallet or HMAC headers is judged by them alone: a bad signature is a 401, never a fall-through
to another scheme.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import hmac_signing, wallet
from core.parties import Party
from core.secrets import decrypt_secret
from providers.models import ProviderCredential
from providers.selectors import credential_get_active, party_for_address, party_for_user, provider_party

CREDENTIAL_TOUCH_INTERVAL = timedelta(minutes=1)


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


def claim_nonce(scope: str, value: str, ttl_seconds: int) -> bool:
    """Record a single-use value in the shared store (PostgreSQL); False if it was already used."""
    from accounts.models import SignatureNonce

    key = hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()
    with connection.cursor() as cursor:
        # One round trip, exact under concurrency: the row comes back only to the request that inserted it.
        cursor.execute(
            f"INSERT INTO {SignatureNonce._meta.db_table} (key, expires_at) VALUES (%s, %s) "  # noqa: S608 - table name from the model
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            [key, timezone.now() + timedelta(seconds=ttl_seconds)],
        )
        return cursor.fetchone() is not None


def verify_wallet_fields(
    *, fields: dict[str, str | None], method: str, path: str, raw_body: bytes, body_digest: str | None = None
) -> Party:
    """Verify a wallet signature (headers or WebSocket query), claim its nonce, return the party.

    Raises `wallet.WalletAuthError` for a bad signature and for a reused nonce.
    """
    verified = wallet.verify_signed_request(
        method=method,
        path=path,
        headers_or_params=fields,
        raw_body=raw_body,
        content_type=None,
        now_ms=int(time.time() * 1000),
        chain_id=settings.VE_CHAIN_ID,
        prefix=settings.VE_BECH32_PREFIX,
        max_age_ms=settings.VE_SIGNATURE_MAX_AGE_SECONDS * 1000,
        max_skew_ms=settings.VE_SIGNATURE_MAX_SKEW_SECONDS * 1000,
        precomputed_body_hash=body_digest,
    )
    window = settings.VE_SIGNATURE_MAX_AGE_SECONDS + settings.VE_SIGNATURE_MAX_SKEW_SECONDS + 60
    if not claim_nonce("wallet", f"{verified.address}:{verified.nonce}", window):
        raise wallet.WalletAuthError("nonce_reused", "This nonce was already used.")
    return party_for_address(verified.address)


def verify_hmac_fields(*, fields: dict[str, str | None], method: str, path: str, raw_query: str) -> Party:
    """Verify a provider HMAC signature; raise `hmac_signing.HmacAuthError` if it does not hold."""
    principal = fields.get("principal") or ""
    credential = credential_get_active(principal)
    if credential is None:
        raise hmac_signing.HmacAuthError("unknown_principal", "Unknown or revoked credential.")
    hmac_signing.verify_hmac(
        secret=decrypt_secret(credential.secret_ciphertext),
        method=method,
        path=path,
        raw_query=raw_query,
        principal=principal,
        timestamp_str=fields.get("timestamp") or "",
        signature_hex=fields.get("signature") or "",
        now_s=int(time.time()),
    )
    _touch(credential)
    return provider_party(credential.provider)


def _touch(credential: ProviderCredential) -> None:
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > CREDENTIAL_TOUCH_INTERVAL:
        ProviderCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now  # the object may be cached: keep it in step, or every call writes


def _raw_path(request: Request) -> str:
    """The still percent-encoded path, as the client's `url.pathname` was when it signed."""
    return escape_uri_path(request._request.path)


class _HashingStream:
    """Hashes a request body while Django's multipart parser streams it to temporary files."""

    def __init__(self, stream: Any) -> None:
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
        django_request._stream = hashing
        _ = request.data  # parse now: files stream to temporary storage while hashed
        hashing.drain()
        return b"", hashing.sha256.hexdigest() if hashing.size else ""
    try:
        return django_request.body, None
    except RequestDataTooBig as error:
        raise exceptions.ParseError("Request body too large.") from error


class WalletSignatureAuthentication(authentication.BaseAuthentication):
    """VirtEngine wallet-signed requests (ADR-036 over the request, single-use nonces)."""

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[PartyPrincipal, Party] | None:
        fields = wallet.wallet_fields_from_headers(request.headers)
        if fields is None:
            return None
        raw_body, digest = _signed_body(request)
        try:
            party = verify_wallet_fields(
                fields=fields,
                method=request.method,
                path=_raw_path(request),
                raw_body=raw_body,
                body_digest=digest,
            )
        except wallet.WalletAuthError as error:
            raise exceptions.AuthenticationFailed(error.message, code=str(error.reason_code)) from error
        return PartyPrincipal(party), party

    def authenticate_header(self, request: Request) -> str:
        return 'VE-Signature realm="api", VE-HMAC realm="api"'


class ProviderHmacAuthentication(authentication.BaseAuthentication):
    """Provider machine credentials: HMAC-SHA256 over method, path, query, principal and timestamp."""

    def authenticate(self, request: Request) -> tuple[PartyPrincipal, Party] | None:
        fields = hmac_signing.hmac_fields_from_headers(request.headers)
        if fields is None:
            return None
        try:
            party = verify_hmac_fields(
                fields=fields,
                method=request.method,
                path=_raw_path(request),
                raw_query=request._request.META.get("QUERY_STRING", ""),
            )
        except hmac_signing.HmacAuthError as error:
            raise exceptions.AuthenticationFailed(error.message, code=str(error.reason_code)) from error
        return PartyPrincipal(party), party

    def authenticate_header(self, request: Request) -> str:
        return 'VE-HMAC realm="api"'


class PortalSessionAuthentication(authentication.SessionAuthentication):
    """The portal's own JavaScript: Django session cookie plus CSRF on unsafe methods."""


def request_party(request: Request) -> Party:
    """The party acting in this request; 403 for a signed-in user with no role at all."""
    cached = getattr(request, "_ve_party", None)
    if cached is not None:
        return cached
    party = request.auth if isinstance(request.auth, Party) else party_for_user(request.user)
    if party is None:
        raise exceptions.PermissionDenied("Your account is not a customer, provider member or support agent.")
    request._ve_party = party
    return party

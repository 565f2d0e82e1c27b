"""Writes of the accounts app: single-use nonces, and verifying signed requests (which claims their nonce
and records when a credential was last used)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts import hmac_signing, wallet
from accounts.models import SignatureNonce
from core.parties import Party
from core.secrets import decrypt_secret
from providers.selectors import credential_get_active, party_for_address, provider_party
from providers.services import credential_touch


def nonce_claim(scope: str, value: str, ttl_seconds: int) -> bool:
    """Record a single-use value in the shared store (PostgreSQL); False if it was already used."""
    key = hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()
    with connection.cursor() as cursor:
        # One round trip, exact under concurrency: the row comes back only to the request that inserted it.
        cursor.execute(
            f"INSERT INTO {SignatureNonce._meta.db_table} (key, expires_at) VALUES (%s, %s) "  # noqa: S608 - table name from the model
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            [key, timezone.now() + timedelta(seconds=ttl_seconds)],
        )
        return cursor.fetchone() is not None


def wallet_signature_verify(
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
    if not nonce_claim("wallet", f"{verified.address}:{verified.nonce}", window):
        raise wallet.WalletAuthError("nonce_reused", "This nonce was already used.")
    return party_for_address(verified.address)


def hmac_signature_verify(
    *,
    fields: dict[str, str | None],
    method: str,
    path: str,
    raw_query: str,
    body_sha256: Callable[[], str] | None = None,
) -> Party:
    """Verify a provider HMAC signature (VirtEngine's format, or the stronger one with a body hash and a
    nonce, which is then claimed once); raise `hmac_signing.HmacAuthError` if it does not hold.

    `body_sha256` hashes the received body; it is only called for the stronger version (a WebSocket
    handshake has no body: None means the empty one).
    """
    principal = hmac_signing.check_principal(fields.get("principal"))
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
        nonce=fields.get("nonce"),
        content_sha256=fields.get("content_sha256"),
        body_sha256=body_sha256 or (lambda: hmac_signing.EMPTY_BODY_SHA256),
        require_strong=credential.require_strong_signature or settings.VE_HMAC_REQUIRE_STRONG,
    )
    nonce = fields.get("nonce")
    if nonce and not nonce_claim("hmac", f"{principal}:{nonce}", 2 * hmac_signing.DEFAULT_WINDOW_S + 60):
        raise hmac_signing.HmacAuthError(hmac_signing.Reason.NONCE_REUSED, "This nonce was already used.")
    credential_touch(credential=credential)
    return provider_party(credential.provider)


def signature_nonces_expire() -> int:
    """Forget nonces whose requests are outside the accepted time window anyway; how many."""
    deleted, _ = SignatureNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted

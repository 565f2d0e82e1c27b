"""Writes of the accounts app: single-use nonces, verifying signed requests (which claims their nonce and
records when a credential was last used), and signing in to the portal with a wallet."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import connection, transaction
from django.utils import timezone

from accounts import hmac_signing
from accounts.models import SignatureNonce
from core import wallet
from core.addresses import is_valid_address
from core.errors import NotAuthenticated, ValidationFailed
from core.formats import iso_timestamp
from core.parties import Party
from core.secrets import decrypt_secret
from providers.models import CustomerIdentity, ProviderMembership
from providers.selectors import credential_get_active, party_for_address, provider_by_address, provider_party
from providers.services import credential_touch, customer_identity_link, provider_member_add, user_ensure


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
        secret=decrypt_secret(bytes(credential.secret_ciphertext)),
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


# -- Sign-in with a wallet (the portal) --------------------------------------------------------------


@dataclass(frozen=True)
class SignInChallenge:
    """What the wallet signs (`text`), and the opaque `token` the browser sends back with the signature."""

    text: str
    token: str
    chain_id: str
    expires_at: datetime


class SignInMode(StrEnum):
    # Keplr/Leap `signArbitrary(chainId, address, text)`: strict ADR-036, the sign doc's chain_id is "".
    ARBITRARY = "arbitrary"
    # `signAmino` of the same sign doc with the chain's ID, as VirtEngine's own portal signs its requests.
    AMINO = "amino"


_CHALLENGE_SALT = "accounts.wallet-sign-in"


def _challenge_text(address: str, nonce: str, issued_at: datetime) -> str:
    expires_at = issued_at + timedelta(seconds=settings.VE_WALLET_SIGN_IN_SECONDS)
    return (
        "Sign in to VirtEngine Support\n\n"
        f"Address: {address}\n"
        f"Nonce: {nonce}\n"
        f"Issued at: {iso_timestamp(issued_at)}\n"
        f"Expires at: {iso_timestamp(expires_at)}"
    )


def wallet_sign_in_challenge(*, address: str) -> SignInChallenge:
    """A single-use challenge for `address` to sign, valid for VE_WALLET_SIGN_IN_SECONDS.

    Stateless until used: the token is signed with SECRET_KEY and carries the address, nonce and time;
    the nonce is claimed (once, in PostgreSQL) when the signature comes back.
    """
    if not is_valid_address(address):
        raise ValidationFailed(
            "Not a wallet address.",
            fields={"address": ["Expected a bech32 address with the chain's prefix."]},
        )
    issued_at = timezone.now().replace(microsecond=0)
    nonce = secrets.token_urlsafe(16)
    token = signing.dumps({"a": address, "n": nonce, "t": int(issued_at.timestamp())}, salt=_CHALLENGE_SALT)
    return SignInChallenge(
        text=_challenge_text(address, nonce, issued_at),
        token=token,
        chain_id=settings.VE_CHAIN_ID,
        expires_at=issued_at + timedelta(seconds=settings.VE_WALLET_SIGN_IN_SECONDS),
    )


def wallet_sign_in_verify(*, token: str, address: str, signature: str, pub_key: str, mode: str) -> str:
    """The address that signed its challenge: the signature over exactly the sign doc that `mode`'s wallet
    call signs, by the key the address belongs to, within the challenge's lifetime, once. Raises
    NotAuthenticated (or ValidationFailed for an unknown mode) otherwise. Creates nothing: the caller
    then picks the user (`wallet_user_for`)."""
    if mode not in SignInMode.__members__.values():
        raise ValidationFailed("Unknown signing mode.", fields={"mode": ["Expected arbitrary or amino."]})
    try:
        claims = signing.loads(token, salt=_CHALLENGE_SALT, max_age=settings.VE_WALLET_SIGN_IN_SECONDS)
    except signing.SignatureExpired as error:
        raise NotAuthenticated("The sign-in request expired; try again.", code="challenge_expired") from error
    except signing.BadSignature as error:
        raise NotAuthenticated("Not a sign-in request of ours.", code="challenge_invalid") from error
    if claims.get("a") != address:
        raise NotAuthenticated("The challenge was issued to another address.", code="challenge_invalid")
    issued_at = datetime.fromtimestamp(claims["t"], tz=UTC)
    chain_id = "" if mode == SignInMode.ARBITRARY else settings.VE_CHAIN_ID
    try:
        wallet.verify_signature(
            sign_bytes=wallet.data_sign_bytes(
                _challenge_text(address, claims["n"], issued_at), address, chain_id
            ),
            signature_b64=signature,
            pubkey_b64=pub_key,
            address=address,
            prefix=settings.VE_BECH32_PREFIX,
            what="sign-in request",
        )
    except wallet.WalletAuthError as error:
        raise NotAuthenticated(error.message, code=error.reason_code) from error
    if not nonce_claim("sign-in", claims["n"], settings.VE_WALLET_SIGN_IN_SECONDS + 60):
        raise NotAuthenticated("This sign-in request was already used.", code="challenge_used")
    return address


@transaction.atomic
def wallet_user_for(address: str) -> User:
    """The portal user an address signs in as (created on first sign-in, named by the address)."""
    provider = provider_by_address(address)
    if provider is not None:
        user = user_ensure(username=address)
        provider_member_add(provider=provider, user=user, role=ProviderMembership.Role.ADMIN)
        return user
    identity = CustomerIdentity.objects.select_related("user").filter(address=address).first()
    if identity is not None and identity.user is not None:
        return identity.user
    user = user_ensure(username=address)
    customer_identity_link(address=address, user=user)
    return user

"""The keys the chain app holds: support's envelope key pair, the local ledger's node key, the relayer's key.

Each comes from a setting or, for a demo installation where the setting is empty, from a file generated once
(mode 0600) and reused, so that a fresh checkout anchors and verifies with no key ceremony. Production sets
the values (or points the paths at provisioned files).

Keys are cached per source (setting value or path): tests point the settings at temporary files.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from pathlib import Path

import coincurve
import nacl.signing
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chain import envelopes
from chain.ledger import load_or_create_node_key
from core.addresses import address_from_pubkey
from core.secrets import create_secret_file_once


@dataclass(frozen=True, slots=True)
class EnvelopeKeyPair:
    """Raw 32-byte X25519 keys."""

    private_key: bytes
    public_key: bytes


@functools.cache
def _support_keypair(configured: str, path: str) -> EnvelopeKeyPair:
    if configured:
        try:
            private_key = envelopes.private_key_from_b64(configured)
        except envelopes.EnvelopeError as exc:
            raise ImproperlyConfigured(f"VE_CHAIN_SUPPORT_PRIVATE_KEY: {exc}") from exc
    else:
        key_path = Path(path)
        create_secret_file_once(key_path, envelopes.generate_keypair()[0].encode() + b"\n")
        try:
            private_key = envelopes.private_key_from_b64(key_path.read_text().strip())
        except envelopes.EnvelopeError as exc:
            raise ImproperlyConfigured(f"{key_path}: {exc}") from exc
    return EnvelopeKeyPair(private_key=private_key, public_key=envelopes.public_key_of(private_key))


def support_keypair() -> EnvelopeKeyPair:
    """Support's X25519 envelope key pair (every envelope is sealed to its public key)."""
    return _support_keypair(settings.VE_CHAIN_SUPPORT_PRIVATE_KEY, str(settings.VE_CHAIN_SUPPORT_KEY_PATH))


@functools.cache
def _node_key(path: str) -> nacl.signing.SigningKey:
    return load_or_create_node_key(Path(path))


def node_signing_key() -> nacl.signing.SigningKey:
    """The local ledger's Ed25519 block-signing key."""
    return _node_key(str(settings.VE_CHAIN_NODE_KEY_PATH))


def node_public_key_b64() -> str:
    """The node key's public half as blocks carry it (`signer_pubkey`): what verification trusts."""
    return base64.b64encode(bytes(node_signing_key().verify_key)).decode("ascii")


@functools.cache
def _signer_key(configured: str, path: str) -> bytes:
    if configured:
        raw = configured.strip().removeprefix("0x")
    else:
        key_path = Path(path)
        create_secret_file_once(key_path, coincurve.PrivateKey().secret.hex().encode() + b"\n")
        raw = key_path.read_text().strip()
    try:
        secret = bytes.fromhex(raw)
        coincurve.PrivateKey(secret)
    except ValueError as exc:
        raise ImproperlyConfigured("the chain signer key must be 32 bytes of hex (secp256k1)") from exc
    return secret


def signer_private_key() -> bytes:
    """The relayer account's secp256k1 private key (32 raw bytes)."""
    return _signer_key(settings.VE_CHAIN_SIGNER_PRIVATE_KEY, str(settings.VE_CHAIN_SIGNER_KEY_PATH))


def signer_public_key() -> bytes:
    """The relayer's 33-byte compressed secp256k1 public key."""
    return coincurve.PrivateKey(signer_private_key()).public_key.format(compressed=True)


def relayer_address() -> str:
    """The account every x/support message is sent from: the setting, else the signer key's address."""
    return settings.VE_CHAIN_RELAYER_ADDRESS or address_from_pubkey(signer_public_key())


def public_key_or_none(text: str) -> bytes | None:
    """A party's stored base64 X25519 public key, or None when absent or unusable."""
    if not text:
        return None
    try:
        return envelopes.public_key_from_b64(text)
    except envelopes.EnvelopeError:
        return None


def open_with_support_key(envelope: bytes) -> bytes:
    """Decrypt an envelope as support (verification, the support console)."""
    return envelopes.open_envelope(envelope, support_keypair().private_key)


__all__ = [
    "EnvelopeKeyPair",
    "node_public_key_b64",
    "node_signing_key",
    "open_with_support_key",
    "public_key_or_none",
    "relayer_address",
    "signer_private_key",
    "signer_public_key",
    "support_keypair",
]

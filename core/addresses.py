"""Bech32 chain addresses: validation and derivation from a secp256k1 public key (Cosmos SDK rules)."""

from __future__ import annotations

import hashlib

import bech32
from Crypto.Hash import RIPEMD160
from django.conf import settings


def address_from_pubkey(compressed_pubkey: bytes, prefix: str | None = None) -> str:
    """`prefix1…` address of a 33-byte compressed secp256k1 key: bech32(RIPEMD160(SHA256(key)))."""
    digest = RIPEMD160.new(hashlib.sha256(compressed_pubkey).digest()).digest()
    words = bech32.convertbits(digest, 8, 5)
    return bech32.bech32_encode(prefix or settings.VE_BECH32_PREFIX, words)


def is_valid_address(address: str, prefix: str | None = None) -> bool:
    """True for a well-formed bech32 account address (20-byte payload) with the chain's prefix."""
    if not isinstance(address, str) or address != address.lower():
        return False
    hrp, words = bech32.bech32_decode(address)
    if hrp != (prefix or settings.VE_BECH32_PREFIX) or words is None:
        return False
    payload = bech32.convertbits(words, 5, 8, pad=False)
    return payload is not None and len(payload) == 20

"""Multi-recipient encrypted envelopes for ticket content anchored on the chain.

The chain must see ciphertext, hashes and public metadata only, yet the customer, the provider and
support each need to read what they may see. So every payload is encrypted once with a fresh content
key (XSalsa20-Poly1305, `nacl.secret.SecretBox`) and that key is sealed to each recipient's X25519
public key (`nacl.public.SealedBox`: ephemeral X25519 + XSalsa20-Poly1305, anonymous sender).

Envelope (a JSON object, serialised canonically: sorted keys, no spaces, UTF-8)::

    {"v": 1, "alg": "X25519-XSalsa20-Poly1305",
     "recipients": [{"id": "customer", "key_id": "<hex sha256(pubkey)[:8]>", "sealed_key": "<b64>"}, ...],
     "nonce": "<b64, 24 bytes>", "ciphertext": "<b64>"}

An envelope does not authenticate its author (sealed boxes are anonymous by design); its authenticity
comes from the signed ledger block that anchors its digest (`envelope_digest`).

Version 2 (every envelope sealed since erasure exists) adds a **shred key**: a random 32-byte key per
event, held only in the database (`chain.models.EnvelopeKey`), never on the ledger. The payload is then
encrypted under BLAKE2b(content key, key = shred key, person = "ve-envelope-v2"), a keyed hash used as a
KDF, so that opening it takes both a recipient's private key (for the content key) and the shred key.
Destroying the shred key (erasure) leaves ciphertext that no one, support included, can open again:
crypto-shredding on an append-only ledger. `"v": 2` says so (no other field changes: the x/support
protobuf envelope carries the version, so a v2 envelope survives the CometBFT round trip byte for byte).

Pure module: no Django, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.secret
import nacl.utils

from core.formats import canonical_json_bytes

VERSION = 1
SHREDDABLE_VERSION = 2
_SHRED_PERSON = b"ve-envelope-v2"
ALGORITHM = "X25519-XSalsa20-Poly1305"
KEY_SIZE = 32
KEY_ID_BYTES = 8

__all__ = [
    "ALGORITHM",
    "VERSION",
    "EnvelopeError",
    "envelope_digest",
    "generate_keypair",
    "key_id",
    "needs_shred_key",
    "new_shred_key",
    "open_envelope",
    "payload_for",
    "private_key_from_b64",
    "public_key_from_b64",
    "public_key_of",
    "recipients_of",
    "seal",
]


class EnvelopeError(Exception):
    """The envelope is malformed, the key is not one of its recipients, or authentication failed."""


def payload_for(*, content: Mapping[str, Any]) -> bytes:
    """The plaintext that goes into an envelope: the canonical JSON of the private content."""
    return canonical_json_bytes(dict(content))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, *, what: str) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"{what} is not valid base64") from exc


def key_id(public_key: bytes) -> str:
    """Hex of the first 8 bytes of SHA-256(public key): lets a reader find its entry without trying all."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_BYTES].hex()


def generate_keypair() -> tuple[str, str]:
    """A new X25519 key pair as (private_b64, public_b64)."""
    private = nacl.public.PrivateKey.generate()
    return _b64(bytes(private)), _b64(bytes(private.public_key))


def public_key_from_b64(text: str) -> bytes:
    """Decode and check a base64 X25519 public key (32 raw bytes)."""
    raw = _unb64(text, what="public key")
    if len(raw) != KEY_SIZE:
        raise EnvelopeError(f"public key must be {KEY_SIZE} bytes, got {len(raw)}")
    return raw


def private_key_from_b64(text: str) -> bytes:
    """Decode and check a base64 X25519 private key (32 raw bytes)."""
    raw = _unb64(text, what="private key")
    if len(raw) != KEY_SIZE:
        raise EnvelopeError(f"private key must be {KEY_SIZE} bytes, got {len(raw)}")
    return raw


def public_key_of(private_key: bytes) -> bytes:
    """The X25519 public key of a raw private key."""
    if len(private_key) != KEY_SIZE:
        raise EnvelopeError(f"private key must be {KEY_SIZE} bytes, got {len(private_key)}")
    return bytes(nacl.public.PrivateKey(private_key).public_key)


def new_shred_key() -> bytes:
    return nacl.utils.random(KEY_SIZE)


def _payload_key(content_key: bytes, shred_key: bytes | None) -> bytes:
    if shred_key is None:
        return content_key
    if len(shred_key) != KEY_SIZE:
        raise EnvelopeError(f"a shred key must be {KEY_SIZE} bytes")
    return nacl.hash.blake2b(
        content_key,
        digest_size=KEY_SIZE,
        key=shred_key,
        person=_SHRED_PERSON,
        encoder=nacl.encoding.RawEncoder,
    )


def seal(plaintext: bytes, recipients: Mapping[str, bytes], *, shred_key: bytes | None = None) -> bytes:
    """Encrypt `plaintext` to every recipient (label → raw 32-byte X25519 public key); envelope bytes.
    With a `shred_key`, a version 2 envelope: opening it also takes that key (see the module doc)."""
    if not recipients:
        raise EnvelopeError("an envelope needs at least one recipient")
    content_key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = (
        nacl.secret.SecretBox(_payload_key(content_key, shred_key)).encrypt(plaintext, nonce).ciphertext
    )
    entries = []
    # Sorted by label so that the recipient list does not depend on the caller's dict order.
    for label in sorted(recipients):
        public_key = recipients[label]
        if not isinstance(public_key, bytes | bytearray) or len(public_key) != KEY_SIZE:
            raise EnvelopeError(f"recipient {label!r}: public key must be {KEY_SIZE} raw bytes")
        sealed_key = nacl.public.SealedBox(nacl.public.PublicKey(bytes(public_key))).encrypt(content_key)
        entries.append({"id": label, "key_id": key_id(bytes(public_key)), "sealed_key": _b64(sealed_key)})
    envelope: dict[str, Any] = {
        "v": VERSION,
        "alg": ALGORITHM,
        "recipients": entries,
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
    }
    if shred_key is not None:
        envelope["v"] = SHREDDABLE_VERSION
    return canonical_json_bytes(envelope)


def _parse(envelope: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(envelope, Mapping):
        parsed: Any = dict(envelope)
    else:
        try:
            parsed = json.loads(envelope)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError("envelope is not JSON") from exc
    if not isinstance(parsed, dict):
        raise EnvelopeError("envelope is not a JSON object")
    if parsed.get("v") not in (VERSION, SHREDDABLE_VERSION) or parsed.get("alg") != ALGORITHM:
        raise EnvelopeError(
            f"unsupported envelope version/algorithm: {parsed.get('v')!r}/{parsed.get('alg')!r}"
        )
    recipients = parsed.get("recipients")
    if not isinstance(recipients, list) or not all(isinstance(entry, dict) for entry in recipients):
        raise EnvelopeError("envelope recipients must be a list of objects")
    return parsed


def recipients_of(envelope: bytes | str | Mapping[str, Any]) -> list[str]:
    """The recipient labels of an envelope, in envelope order (readable without any key)."""
    return [str(entry.get("id", "")) for entry in _parse(envelope)["recipients"]]


def needs_shred_key(envelope: bytes | str | Mapping[str, Any]) -> bool:
    """Whether the envelope is shreddable (version 2): opening it takes its shred key too."""
    return _parse(envelope).get("v") == SHREDDABLE_VERSION


def open_envelope(
    envelope: bytes | str | Mapping[str, Any], private_key: bytes, *, shred_key: bytes | None = None
) -> bytes:
    """Decrypt an envelope with a raw X25519 private key (and, for version 2, its shred key); EnvelopeError
    unless the key is a recipient (and the shred key the envelope's)."""
    parsed = _parse(envelope)
    shreddable = parsed.get("v") == SHREDDABLE_VERSION
    if shreddable and shred_key is None:
        raise EnvelopeError("this envelope needs its shred key, which is not given (destroyed or missing)")
    public_key = public_key_of(private_key)
    wanted = key_id(public_key)
    box = nacl.public.SealedBox(nacl.public.PrivateKey(private_key))
    content_key = None
    # key_id is only a hint (8 bytes could collide, and an entry is not bound to its key_id), so every
    # matching entry is tried and only an authenticated unseal counts.
    for entry in parsed["recipients"]:
        if entry.get("key_id") != wanted:
            continue
        try:
            candidate = box.decrypt(_unb64(entry.get("sealed_key"), what="sealed_key"))
        except nacl.exceptions.CryptoError:
            continue
        if len(candidate) == nacl.secret.SecretBox.KEY_SIZE:
            content_key = candidate
            break
    if content_key is None:
        raise EnvelopeError("this key is not a recipient of the envelope")
    nonce = _unb64(parsed.get("nonce"), what="nonce")
    ciphertext = _unb64(parsed.get("ciphertext"), what="ciphertext")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise EnvelopeError("nonce has the wrong length")
    try:
        payload_key = _payload_key(content_key, shred_key if shreddable else None)
        return nacl.secret.SecretBox(payload_key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise EnvelopeError("envelope content failed authentication") from exc


def envelope_digest(envelope: bytes) -> str:
    """Hex SHA-256 of the envelope bytes exactly as anchored (what the chain's payload hash commits to)."""
    return hashlib.sha256(envelope).hexdigest()

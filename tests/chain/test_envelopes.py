"""Multi-recipient envelopes: who can open what, and what tampering is caught. No database."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest

from chain import envelopes
from chain.envelopes import EnvelopeError
from core.formats import canonical_json_bytes

LABELS = ("customer", "provider", "support")


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    """label → (private, public), raw bytes, plus an outsider who is never a recipient."""
    pairs = {}
    for label in (*LABELS, "outsider"):
        private_b64, public_b64 = envelopes.generate_keypair()
        pairs[label] = (
            envelopes.private_key_from_b64(private_b64),
            envelopes.public_key_from_b64(public_b64),
        )
    return pairs


def _seal(keys: dict[str, tuple[bytes, bytes]], labels: tuple[str, ...], plaintext: bytes) -> bytes:
    return envelopes.seal(plaintext, {label: keys[label][1] for label in labels})


def _edit(envelope: bytes, change: Callable[[dict], None]) -> bytes:
    parsed = json.loads(envelope)
    change(parsed)
    return canonical_json_bytes(parsed)


def _flip_b64(text: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("label", LABELS)
def test_every_recipient_opens_the_envelope(keys, label):
    plaintext = "Pod crash-looping — ünïcode too".encode()
    envelope = _seal(keys, LABELS, plaintext)
    assert envelopes.open_envelope(envelope, keys[label][0]) == plaintext


def test_a_non_recipient_key_cannot_open(keys):
    envelope = _seal(keys, LABELS, b"secret")
    with pytest.raises(EnvelopeError, match="not a recipient"):
        envelopes.open_envelope(envelope, keys["outsider"][0])


@pytest.mark.parametrize(
    ("label", "can_open"), [("customer", False), ("provider", True), ("support", True), ("outsider", False)]
)
def test_internal_note_is_sealed_to_provider_and_support_only(keys, label, can_open):
    envelope = _seal(keys, ("provider", "support"), b"internal note")
    assert envelopes.recipients_of(envelope) == ["provider", "support"]
    if can_open:
        assert envelopes.open_envelope(envelope, keys[label][0]) == b"internal note"
    else:
        with pytest.raises(EnvelopeError):
            envelopes.open_envelope(envelope, keys[label][0])


def _tamper_ciphertext(env: dict) -> None:
    env["ciphertext"] = _flip_b64(env["ciphertext"], 5)


def _tamper_nonce(env: dict) -> None:
    env["nonce"] = _flip_b64(env["nonce"])


def _tamper_sealed_key(env: dict) -> None:
    for entry in env["recipients"]:
        entry["sealed_key"] = _flip_b64(entry["sealed_key"], 40)


def _drop_recipient_entries(env: dict) -> None:
    env["recipients"] = []


@pytest.mark.parametrize(
    "tamper", [_tamper_ciphertext, _tamper_nonce, _tamper_sealed_key, _drop_recipient_entries]
)
def test_tampering_is_detected(keys, tamper):
    envelope = _seal(keys, LABELS, b"the original text")
    with pytest.raises(EnvelopeError):
        envelopes.open_envelope(_edit(envelope, tamper), keys["support"][0])


@pytest.mark.parametrize(
    "garbage",
    [
        b"not json",
        b"[]",
        b'{"v":2,"alg":"X25519-XSalsa20-Poly1305","recipients":[],"nonce":"","ciphertext":""}',
        b'{"v":1,"alg":"AES","recipients":[],"nonce":"","ciphertext":""}',
        b'{"v":1,"alg":"X25519-XSalsa20-Poly1305","recipients":"x","nonce":"","ciphertext":""}',
    ],
)
def test_malformed_envelopes_are_refused(keys, garbage):
    with pytest.raises(EnvelopeError):
        envelopes.open_envelope(garbage, keys["support"][0])


def test_envelope_is_canonical_json_with_the_documented_shape(keys):
    envelope = _seal(keys, ("support", "customer"), b"hello")
    parsed = json.loads(envelope)
    assert canonical_json_bytes(parsed) == envelope
    assert parsed["v"] == 1
    assert parsed["alg"] == "X25519-XSalsa20-Poly1305"
    assert len(base64.b64decode(parsed["nonce"])) == 24
    assert [entry["id"] for entry in parsed["recipients"]] == ["customer", "support"]
    for entry in parsed["recipients"]:
        public = keys[entry["id"]][1]
        assert entry["key_id"] == hashlib.sha256(public).digest()[:8].hex()
        assert set(entry) == {"id", "key_id", "sealed_key"}


def test_digest_is_the_sha256_of_the_bytes_and_stable(keys):
    envelope = _seal(keys, LABELS, b"hello")
    assert envelopes.envelope_digest(envelope) == hashlib.sha256(envelope).hexdigest()
    assert envelopes.envelope_digest(envelope) == envelopes.envelope_digest(bytes(envelope))
    # Fresh randomness per envelope: the same plaintext never yields the same ciphertext or digest.
    assert envelopes.envelope_digest(_seal(keys, LABELS, b"hello")) != envelopes.envelope_digest(envelope)


def test_one_key_under_two_labels_opens(keys):
    shared = keys["support"][1]
    envelope = envelopes.seal(b"x", {"provider": shared, "support": shared})
    assert envelopes.open_envelope(envelope, keys["support"][0]) == b"x"


@pytest.mark.parametrize(
    ("recipients", "message"),
    [({}, "at least one recipient"), ({"customer": b"short"}, "32 raw bytes")],
)
def test_seal_refuses_bad_recipients(recipients, message):
    with pytest.raises(EnvelopeError, match=message):
        envelopes.seal(b"x", recipients)


@pytest.mark.parametrize("text", ["", "AAAA", "not base64!", base64.b64encode(b"x" * 33).decode()])
def test_key_decoding_checks_length_and_encoding(text):
    with pytest.raises(EnvelopeError):
        envelopes.public_key_from_b64(text)
    with pytest.raises(EnvelopeError):
        envelopes.private_key_from_b64(text)


def test_generated_keypair_matches():
    private_b64, public_b64 = envelopes.generate_keypair()
    private = envelopes.private_key_from_b64(private_b64)
    assert envelopes.public_key_of(private) == envelopes.public_key_from_b64(public_b64)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"b": 1, "a": "x"}, b'{"a":"x","b":1}'),
        ({"text": "café <b>&"}, '{"text":"café <b>&"}'.encode()),
        ({"nested": {"z": [1, 2], "a": None}}, b'{"nested":{"a":null,"z":[1,2]}}'),
    ],
)
def test_payload_for_is_canonical_json(content, expected):
    assert envelopes.payload_for(content=content) == expected

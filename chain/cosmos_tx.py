"""Cosmos SDK transactions for x/support messages: protobuf bytes, SIGN_MODE_DIRECT signatures, decoding.

Why hand-written: the handful of messages needed here (TxRaw, TxBody, AuthInfo, SignerInfo, Fee, SignDoc,
Any, the secp256k1 PubKey, BaseAccount and the four x/support messages) are a few dozen lines of protobuf
wire format, whereas `cosmpy` brings grpcio, a second protobuf runtime, virtualenv and bcrypt, and still
has no generated classes for VirtEngine's `virtengine.support.v1` package. The wire format is small and
stable; `tests/chain/test_cometbft.py` decodes every byte we send with the independent decoder below and
checks the signature the way a node's ante handler does.

Field numbers follow VirtEngine's protos (`virtengine/support/v1/tx.proto`, `types.proto`,
`virtengine/encryption/v1/types.proto`) and the Cosmos SDK's (`cosmos/tx/v1beta1/tx.proto`,
`cosmos/auth/v1beta1`). Fields are written in field-number order, defaults omitted and map entries sorted
by key, as gogoproto's deterministic marshalling does.

Our messages (`chain.mapping`) carry a few fields the upstream protos lack. They are mapped, not lost:
* `MsgArchiveSupportRequest` is sent as two messages in one (atomic) tx: a `MsgUpdateSupportRequest` with
  `status: closed`, the payload and the public metadata, then the `MsgArchiveSupportRequest` with the reason;
* `MsgAddSupportResponse` has no `public_metadata` on chain: it is dropped (the tx memo carries the event's
  idempotency key, and the envelope the event's seq and kind).
The envelope (our canonical-JSON multi-recipient envelope) becomes an `EncryptedPayloadEnvelope`: each
recipient a `WrappedKeyEntry` (label, sealed content key) with its key id in `recipient_key_ids`; decoding
rebuilds the identical JSON bytes, so `envelope_hash` (SHA-256 of those bytes) checks out on both sides.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import coincurve
from coincurve.ecdsa import cdata_to_der, der_to_cdata, deserialize_compact, serialize_compact

from chain import mapping
from chain.protobuf import (
    Fields,
    ProtoError,
    any_field,
    bytes_field,
    iter_fields,
    len_field,
    message_field,
    str_field,
    string_map_field,
    uint_field,
)
from core.formats import canonical_json_bytes

PUBKEY_TYPE_URL = "/cosmos.crypto.secp256k1.PubKey"
BASE_ACCOUNT_TYPE_URL = "/cosmos.auth.v1beta1.BaseAccount"
ACCOUNT_QUERY_PATH = "/cosmos.auth.v1beta1.Query/Account"
SIGN_MODE_DIRECT = 1
WRAP_ALGORITHM = "X25519-SealedBox"


# -- x/support messages ----------------------------------------------------------------------------


def _envelope_proto(envelope: Mapping[str, Any]) -> bytes:
    recipients = envelope.get("recipients") or []
    return b"".join(
        [
            uint_field(1, int(envelope.get("v", 0))),
            str_field(2, str(envelope.get("alg", ""))),
            uint_field(3, 1),
            *(str_field(4, str(r.get("key_id", ""))) for r in recipients),
            *(
                len_field(
                    7,
                    str_field(1, str(r.get("id", "")))
                    + bytes_field(2, base64.b64decode(str(r.get("sealed_key", ""))))
                    + str_field(3, WRAP_ALGORITHM),
                )
                for r in recipients
            ),
            bytes_field(8, base64.b64decode(str(envelope.get("nonce", "")))),
            bytes_field(9, base64.b64decode(str(envelope.get("ciphertext", "")))),
        ]
    )


def _envelope_from_proto(data: bytes) -> dict[str, Any]:
    fields = Fields.parse(data)
    key_ids = [raw.decode() for raw in fields.repeated(4)]
    wrapped = [Fields.parse(raw) for raw in fields.repeated(7)]
    if len(key_ids) != len(wrapped):
        raise ProtoError("recipient_key_ids and wrapped_keys differ in length")

    def b64(raw: bytes | None) -> str:
        return base64.b64encode(raw or b"").decode("ascii")

    return {
        "v": fields.uint(1),
        "alg": fields.text(2),
        "recipients": [
            {"id": entry.text(1), "key_id": key_id, "sealed_key": b64(entry.raw(2))}
            for key_id, entry in zip(key_ids, wrapped, strict=True)
        ],
        "nonce": b64(fields.raw(8)),
        "ciphertext": b64(fields.raw(9)),
    }


def _payload_proto(payload: Mapping[str, Any] | None) -> bytes | None:
    if not payload:
        return None
    envelope = json.loads(base64.b64decode(str(payload["envelope"])))
    return (
        message_field(1, _envelope_proto(envelope))
        + bytes_field(3, bytes.fromhex(str(payload["sha256"])))
        + uint_field(4, int(payload["size"]))
    )


def _payload_from_proto(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    fields = Fields.parse(data)
    envelope_raw = fields.raw(1)
    envelope_bytes = (
        canonical_json_bytes(_envelope_from_proto(envelope_raw)) if envelope_raw is not None else b""
    )
    return {
        "envelope": base64.b64encode(envelope_bytes).decode("ascii"),
        "sha256": (fields.raw(3) or b"").hex(),
        "size": fields.uint(4),
    }


def _update_proto(message: Mapping[str, Any], *, status: str | None = None) -> bytes:
    return b"".join(
        [
            str_field(1, message.get("sender")),
            str_field(2, message.get("ticket_id")),
            str_field(3, message.get("category")),
            str_field(4, message.get("priority")),
            str_field(5, status or message.get("status")),
            str_field(6, message.get("assigned_agent")),
            message_field(7, _payload_proto(message.get("payload"))),
            string_map_field(8, message.get("public_metadata")),
        ]
    )


def support_messages_to_any(message: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """Our x/support message as the (type URL, protobuf bytes) messages of one tx (see the module doc)."""
    message_type = message.get("@type")
    if message_type == mapping.MSG_CREATE_SUPPORT_REQUEST:
        related = message.get("related_entity") or {}
        body = b"".join(
            [
                str_field(1, message.get("sender")),
                str_field(2, message.get("category")),
                str_field(3, message.get("priority")),
                message_field(4, _payload_proto(message.get("payload")) or b""),
                message_field(
                    5,
                    (str_field(1, related.get("type")) + str_field(2, related.get("id")))
                    if related
                    else None,
                ),
                string_map_field(6, message.get("public_metadata")),
            ]
        )
        return [(message_type, body)]
    if message_type == mapping.MSG_UPDATE_SUPPORT_REQUEST:
        return [(message_type, _update_proto(message))]
    if message_type == mapping.MSG_ADD_SUPPORT_RESPONSE:
        body = (
            str_field(1, message.get("sender"))
            + str_field(2, message.get("ticket_id"))
            + message_field(3, _payload_proto(message.get("payload")) or b"")
        )
        return [(message_type, body)]
    if message_type == mapping.MSG_ARCHIVE_SUPPORT_REQUEST:
        archive = (
            str_field(1, message.get("sender"))
            + str_field(2, message.get("ticket_id"))
            + str_field(3, message.get("reason"))
        )
        return [
            (mapping.MSG_UPDATE_SUPPORT_REQUEST, _update_proto(message, status="closed")),
            (message_type, archive),
        ]
    raise ProtoError(f"no protobuf mapping for {message_type!r}")


def _support_message_from_any(type_url: str, value: bytes) -> dict[str, Any]:
    fields = Fields.parse(value)
    if type_url == mapping.MSG_CREATE_SUPPORT_REQUEST:
        related_raw = fields.raw(5)
        related = Fields.parse(related_raw) if related_raw is not None else None
        decoded: dict[str, Any] = {
            "@type": type_url,
            "sender": fields.text(1),
            "category": fields.text(2),
            "priority": fields.text(3),
            "payload": _payload_from_proto(fields.raw(4)),
            "public_metadata": fields.string_map(6),
        }
        if related is not None:
            decoded["related_entity"] = {"type": related.text(1), "id": related.text(2)}
        return decoded
    if type_url == mapping.MSG_UPDATE_SUPPORT_REQUEST:
        decoded = {"@type": type_url, "sender": fields.text(1), "ticket_id": fields.text(2)}
        for number, name in ((3, "category"), (4, "priority"), (5, "status"), (6, "assigned_agent")):
            if fields.text(number):
                decoded[name] = fields.text(number)
        decoded["payload"] = _payload_from_proto(fields.raw(7))
        decoded["public_metadata"] = fields.string_map(8)
        return decoded
    if type_url == mapping.MSG_ADD_SUPPORT_RESPONSE:
        return {
            "@type": type_url,
            "sender": fields.text(1),
            "ticket_id": fields.text(2),
            "payload": _payload_from_proto(fields.raw(3)),
        }
    if type_url == mapping.MSG_ARCHIVE_SUPPORT_REQUEST:
        return {
            "@type": type_url,
            "sender": fields.text(1),
            "ticket_id": fields.text(2),
            "reason": fields.text(3),
        }
    raise ProtoError(f"unknown message type {type_url!r}")


def support_message_from_any(messages: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """The inverse of `support_messages_to_any`: our message from a tx's messages."""
    decoded = [_support_message_from_any(type_url, value) for type_url, value in messages]
    if len(decoded) == 2 and decoded[1]["@type"] == mapping.MSG_ARCHIVE_SUPPORT_REQUEST:
        update, archive = decoded
        return {**archive, "payload": update.get("payload"), "public_metadata": update.get("public_metadata")}
    if len(decoded) != 1:
        raise ProtoError(f"expected one x/support message, got {len(decoded)}")
    return decoded[0]


# -- transactions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fee:
    amount: str
    denom: str
    gas_limit: int

    def proto(self) -> bytes:
        coin = b""
        if self.amount not in ("", "0"):
            coin = len_field(1, str_field(1, self.denom) + str_field(2, self.amount))
        return coin + uint_field(2, self.gas_limit)


@dataclass(frozen=True, slots=True)
class SignedTx:
    tx_bytes: bytes
    tx_hash: str  # upper-case hex SHA-256 of the tx bytes, as CometBFT names a tx
    sequence: int


def tx_hash_of(tx_bytes: bytes) -> str:
    return hashlib.sha256(tx_bytes).hexdigest().upper()


def body_bytes(messages: Sequence[tuple[str, bytes]], *, memo: str) -> bytes:
    return b"".join(len_field(1, any_field(type_url, value)) for type_url, value in messages) + str_field(
        2, memo
    )


def auth_info_bytes(*, public_key: bytes, sequence: int, fee: Fee) -> bytes:
    signer_info = (
        len_field(1, any_field(PUBKEY_TYPE_URL, bytes_field(1, public_key)))
        + len_field(2, len_field(1, uint_field(1, SIGN_MODE_DIRECT)))
        + uint_field(3, sequence)
    )
    return len_field(1, signer_info) + message_field(2, fee.proto())


def sign_doc_bytes(*, body: bytes, auth_info: bytes, chain_id: str, account_number: int) -> bytes:
    return (
        bytes_field(1, body)
        + bytes_field(2, auth_info)
        + str_field(3, chain_id)
        + uint_field(4, account_number)
    )


def sign_tx(
    *,
    messages: Sequence[tuple[str, bytes]],
    memo: str,
    private_key: bytes,
    chain_id: str,
    account_number: int,
    sequence: int,
    fee: Fee,
) -> SignedTx:
    """A TxRaw signed with SIGN_MODE_DIRECT: ECDSA-secp256k1 over SHA-256 of the SignDoc, 64-byte r‖s, low-S."""
    key = coincurve.PrivateKey(private_key)
    body = body_bytes(messages, memo=memo)
    auth_info = auth_info_bytes(public_key=key.public_key.format(compressed=True), sequence=sequence, fee=fee)
    sign_doc = sign_doc_bytes(
        body=body, auth_info=auth_info, chain_id=chain_id, account_number=account_number
    )
    # libsecp256k1 signs deterministically (RFC 6979) and low-S: the same tx always has the same bytes.
    signature = serialize_compact(der_to_cdata(key.sign(hashlib.sha256(sign_doc).digest(), hasher=None)))
    tx_bytes = bytes_field(1, body) + bytes_field(2, auth_info) + bytes_field(3, signature)
    return SignedTx(tx_bytes=tx_bytes, tx_hash=tx_hash_of(tx_bytes), sequence=sequence)


@dataclass(frozen=True, slots=True)
class DecodedTx:
    body_bytes: bytes
    auth_info_bytes: bytes
    signatures: list[bytes]
    messages: list[tuple[str, bytes]]
    memo: str
    public_key: bytes
    public_key_type_url: str
    sign_mode: int
    sequence: int
    fee_amount: list[tuple[str, str]]
    gas_limit: int


def decode_tx(tx_bytes: bytes) -> DecodedTx:
    """TxRaw → body, auth info and signatures (one signer, as every tx here has)."""
    raw = Fields.parse(tx_bytes)
    body, auth_info = raw.raw(1) or b"", raw.raw(2) or b""
    body_fields = Fields.parse(body)
    messages = []
    for any_raw in body_fields.repeated(1):
        any_fields = Fields.parse(any_raw)
        messages.append((any_fields.text(1), any_fields.raw(2) or b""))
    auth = Fields.parse(auth_info)
    signer_infos = auth.repeated(1)
    if len(signer_infos) != 1:
        raise ProtoError(f"expected one signer, got {len(signer_infos)}")
    signer = Fields.parse(signer_infos[0])
    public_key_any = Fields.parse(signer.raw(1) or b"")
    public_key = Fields.parse(public_key_any.raw(2) or b"").raw(1) or b""
    mode_info = Fields.parse(signer.raw(2) or b"")
    single = Fields.parse(mode_info.raw(1) or b"")
    fee = Fields.parse(auth.raw(2) or b"")
    coins = [(Fields.parse(c).text(1), Fields.parse(c).text(2)) for c in fee.repeated(1)]
    return DecodedTx(
        body_bytes=body,
        auth_info_bytes=auth_info,
        signatures=raw.repeated(3),
        messages=messages,
        memo=body_fields.text(2),
        public_key=public_key,
        public_key_type_url=public_key_any.text(1),
        sign_mode=single.uint(1),
        sequence=signer.uint(3),
        fee_amount=coins,
        gas_limit=fee.uint(2),
    )


def verify_tx_signature(tx: DecodedTx, *, chain_id: str, account_number: int) -> bool:
    """What a node's ante handler checks: the signature over the SignDoc, by the signer's key, low-S."""
    if len(tx.signatures) != 1 or len(tx.signatures[0]) != 64:
        return False
    sign_doc = sign_doc_bytes(
        body=tx.body_bytes, auth_info=tx.auth_info_bytes, chain_id=chain_id, account_number=account_number
    )
    try:
        public_key = coincurve.PublicKey(tx.public_key)
        der = cdata_to_der(deserialize_compact(tx.signatures[0]))
        return public_key.verify(der, hashlib.sha256(sign_doc).digest(), hasher=None)
    except ValueError:
        return False


# -- accounts --------------------------------------------------------------------------------------


def account_query_data(address: str) -> bytes:
    """QueryAccountRequest{address}."""
    return str_field(1, address)


def base_account_any(*, address: str, account_number: int, sequence: int, public_key: bytes | None) -> bytes:
    """QueryAccountResponse{account: Any(BaseAccount)} (what a node answers; used by the test node)."""
    pub = message_field(2, any_field(PUBKEY_TYPE_URL, bytes_field(1, public_key))) if public_key else b""
    account = str_field(1, address) + pub + uint_field(3, account_number) + uint_field(4, sequence)
    return len_field(1, any_field(BASE_ACCOUNT_TYPE_URL, account))


def parse_account_response(data: bytes) -> tuple[int, int]:
    """(account_number, sequence) from a QueryAccountResponse holding a BaseAccount."""
    response = Fields.parse(data)
    account_any = Fields.parse(response.raw(1) or b"")
    if account_any.text(1) != BASE_ACCOUNT_TYPE_URL:
        raise ProtoError(f"unexpected account type {account_any.text(1)!r}")
    account = Fields.parse(account_any.raw(2) or b"")
    return account.uint(3), account.uint(4)


__all__ = [
    "ACCOUNT_QUERY_PATH",
    "SIGN_MODE_DIRECT",
    "DecodedTx",
    "Fee",
    "ProtoError",
    "SignedTx",
    "account_query_data",
    "base_account_any",
    "decode_tx",
    "iter_fields",
    "parse_account_response",
    "sign_tx",
    "support_message_from_any",
    "support_messages_to_any",
    "tx_hash_of",
    "verify_tx_signature",
]

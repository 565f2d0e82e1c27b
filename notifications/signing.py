"""The Standard Webhooks signature scheme (https://www.standardwebhooks.com/), as receivers verify it.

Headers: `webhook-id` (the delivery id, stable across retries), `webhook-timestamp` (Unix seconds of the
attempt) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one
per secret in force (two during a rotation's grace period). Secrets are `whsec_` + base64 of 32 random
bytes; the HMAC key is the decoded bytes.

Pure module: no Django.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `msg_id.timestamp.body` with one secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(
    secrets_in_force: Iterable[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_in_force),
    }

"""Client for a provider's VirtEngine API: fetching a deployment's recent logs.

`GET {api_endpoint}/api/v1/deployments/{lease_id}/logs?tail=200` (text/plain), wallet-signed with the
support service's key when one is configured. Timeouts (to connect, between bytes, and for the whole
response) and a size cap bound what a slow or hostile provider can cost us; obvious secrets are redacted
before anything is stored.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import requests
import urllib3
from django.conf import settings

from core import wallet
from providers.models import Deployment

TAIL_LINES = 200
CONNECT_TIMEOUT_SECONDS = 3.05
MAX_LOG_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024

REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[REDACTED PRIVATE KEY]",
    ),
    # A key cut off by the size cap has no END line: everything after its BEGIN line goes.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*\Z", re.S), "[REDACTED PRIVATE KEY]"),
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(bearer|basic|token)?\s*[^\s,;]+"), r"\1[REDACTED]"),
    (
        re.compile(
            r"(?i)\b((?:[a-z0-9_]*?)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[a-z0-9_]*\"?\s*[:=]\s*\"?)([^\s\"',;]+)"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "[REDACTED AWS KEY]"),
    (
        re.compile(r"\b(postgres(?:ql)?|mysql|mongodb(?:\+srv)?|redis|amqp)://([^:/\s]+):([^@/\s]+)@"),
        r"\1://\2:[REDACTED]@",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), "[REDACTED JWT]"),
]


class ProviderUnavailable(Exception):
    """The provider did not answer usefully now; worth retrying later."""


class ProviderRefused(Exception):
    """The provider answered with a definitive refusal (4xx); retrying will not help."""


def redact(text: str) -> str:
    """Remove obvious secrets (keys, passwords, tokens, credentials in URLs) from log text."""
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _signed_headers(method: str, path: str) -> dict[str, str]:
    key_hex = settings.VE_SUPPORT_WALLET_PRIVATE_KEY
    if not key_hex:
        return {}
    return wallet.sign_request(
        private_key=bytes.fromhex(key_hex),
        method=method,
        path=path,
        body=None,
        content_type=None,
        timestamp_ms=int(time.time() * 1000),
        nonce=wallet.new_nonce(),
        chain_id=settings.VE_CHAIN_ID,
        prefix=settings.VE_BECH32_PREFIX,
    )


def _read_some(response: requests.Response) -> bytes:
    try:
        return response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise ProviderUnavailable(f"Provider connection failed: {error.__class__.__name__}") from error


def fetch_deployment_logs(deployment: Deployment, *, tail: int = TAIL_LINES) -> tuple[str, bool]:
    """The last `tail` lines of the deployment's logs, redacted, and whether they were cut at the cap."""
    endpoint = deployment.provider.api_endpoint.rstrip("/")
    if not endpoint:
        raise ProviderRefused("The provider has no API endpoint configured.")
    path = f"/api/v1/deployments/{quote(deployment.lease_id, safe='')}/logs"
    try:
        response = requests.get(
            f"{endpoint}{path}",
            params={"tail": tail},
            headers={"Accept": "text/plain", **_signed_headers("GET", path)},
            timeout=(CONNECT_TIMEOUT_SECONDS, settings.VE_PROVIDER_API_READ_TIMEOUT_SECONDS),
            stream=True,
        )
    except requests.RequestException as error:
        raise ProviderUnavailable(f"Provider unreachable: {error.__class__.__name__}") from error
    with response:
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"Provider answered {response.status_code}.")
        if response.status_code >= 400:
            raise ProviderRefused(f"Provider refused the request ({response.status_code}).")
        chunks: list[bytes] = []
        received = 0
        truncated = False
        allowed = settings.VE_PROVIDER_API_FETCH_DEADLINE_SECONDS
        deadline = time.monotonic() + allowed
        # read1: whatever has arrived (up to a chunk), so that the deadline is checked as bytes trickle in.
        while chunk := _read_some(response):
            chunks.append(chunk)
            received += len(chunk)
            if received > MAX_LOG_BYTES:
                truncated = True
                break
            if time.monotonic() > deadline:
                raise ProviderUnavailable(f"Provider too slow: no complete answer in {allowed} s.")
    data = b"".join(chunks)[:MAX_LOG_BYTES]
    return redact(data.decode("utf-8", errors="replace")), truncated

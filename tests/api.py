"""Test clients for the REST API that authenticate exactly as real callers do: a VirtEngine wallet
signature (fresh nonce per request), a provider HMAC credential, or a portal session."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.test import Client

from accounts import hmac_signing
from core import wallet
from tests.contract import assert_status_listed


@dataclass
class WalletSigner:
    private_key: bytes

    def headers(self, method: str, path: str, body: bytes, **overrides: Any) -> dict[str, str]:
        return wallet.sign_request(
            private_key=self.private_key,
            method=method,
            path=path,
            body=body or None,
            content_type=None,
            timestamp_ms=overrides.get("timestamp_ms", int(time.time() * 1000)),
            nonce=overrides.get("nonce") or wallet.new_nonce(),
            chain_id=settings.VE_CHAIN_ID,
            prefix=settings.VE_BECH32_PREFIX,
        )


@dataclass
class HmacSigner:
    principal: str
    secret: str
    strong: bool = False  # the stronger version: a fresh nonce and the body's hash, signed

    def headers(
        self, method: str, path: str, body: bytes, *, raw_query: str = "", **overrides: Any
    ) -> dict[str, str]:
        timestamp = overrides.get("timestamp", int(time.time()))
        strong = hmac_signing.Strong.of(body, overrides.get("nonce")) if self.strong else None
        return hmac_signing.hmac_headers(
            self.principal, self.secret, method, path, raw_query, timestamp, strong
        )


class Api:
    """A Django test client that signs each request with `signer` (or relies on a logged-in session)."""

    def __init__(self, signer: WalletSigner | HmacSigner | None = None, client: Client | None = None) -> None:
        self.signer = signer
        self.client = client or Client()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        raw_body: bytes | None = None,
        content_type: str = "application/json",
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        body = (
            raw_body
            if raw_body is not None
            else (json.dumps(json_body).encode() if json_body is not None else b"")
        )
        query = urlencode(params or {}, doseq=True)
        headers: dict[str, str] = {}
        if self.signer is not None:
            if isinstance(self.signer, HmacSigner):
                headers.update(self.signer.headers(method, urlsplit(path).path, body, raw_query=query))
            else:
                headers.update(self.signer.headers(method, urlsplit(path).path, body))
        headers.update(extra_headers or {})
        url = f"{path}?{query}" if query else path
        response = self.client.generic(
            method, url, data=body, content_type=content_type if body else None, headers=headers
        )
        assert_status_listed(method, url, response.status_code)  # the schema lists every status we answer
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json_body=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)

    def upload(self, filename: str, content: bytes, content_type: str = "application/octet-stream") -> Any:
        boundary = "----ve-test-boundary-7MA4YWxkTrZu0gW"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request(
            "POST",
            "/api/v1/attachments",
            raw_body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )

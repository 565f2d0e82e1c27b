"""WebSocket authentication and origin checks, producing `scope["party"]` for the consumers.

Three ways in, as on the REST API: the portal's session cookie; a VirtEngine wallet signature in the
query (`ve_address`, `ve_ts`, `ve_nonce`, `ve_sig`, `ve_pub`, signed as a `GET` of the socket's path
with no body); a provider HMAC credential in the query (`ve_principal`, `ve_ts`, `ve_hmac`, signed over
the query without those three). A connection carrying signature parameters is judged by them alone.
Failures are recorded in `scope["auth_error"]`; the consumer closes with a 4xxx code without joining
any group.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from accounts import hmac_signing, wallet
from accounts.services import hmac_signature_verify, wallet_signature_verify
from core.parties import Party
from providers.selectors import party_for_user


def _query(scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
    raw = scope.get("query_string", b"").decode("latin1")
    return raw, {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _has_signature(params: dict[str, str]) -> bool:
    return any(name in params for name in (wallet.QUERY_SIGNATURE, hmac_signing.QUERY_SIGNATURE))


@database_sync_to_async
def _party_from_scope(scope: dict[str, Any]) -> tuple[Party | None, str | None]:
    raw_query, params = _query(scope)
    path = scope.get("raw_path", b"").decode("latin1") or scope["path"]
    path = urlparse(path).path
    wallet_fields = wallet.wallet_fields_from_query(params)
    if wallet_fields is not None:
        try:
            return wallet_signature_verify(fields=wallet_fields, method="GET", path=path, raw_body=b""), None
        except wallet.WalletAuthError as error:
            return None, f"wallet signature refused: {error.message}"
    hmac_fields = hmac_signing.hmac_fields_from_query(params)
    if hmac_fields is not None:
        try:
            party = hmac_signature_verify(
                fields=hmac_fields,
                method="GET",
                path=path,
                raw_query=hmac_signing.raw_query_without_auth(raw_query),
            )
        except hmac_signing.HmacAuthError as error:
            return None, f"HMAC signature refused: {error.message}"
        return party, None
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None, "authentication required"
    party = party_for_user(user)
    return party, None if party is not None else "no customer, provider or support role"


class PartyMiddleware:
    """Resolves the acting party (after Channels' session middleware has set `scope["user"]`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        party, error = await _party_from_scope(scope)
        return await self.inner({**scope, "party": party, "auth_error": error}, receive, send)


def WebSocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return AuthMiddlewareStack(PartyMiddleware(inner))


class PortalOriginValidator(OriginValidator):
    """Browsers always send Origin, and it must be one of our ALLOWED_HOSTS (no cross-site socket riding
    a session cookie). Non-browser clients (provider tooling, scripts) send none; they may connect only
    with a signature in the query, since without a cookie there is nothing for another site to ride on."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        has_origin = any(name == b"origin" for name, _ in scope.get("headers", []))
        if not has_origin:
            if _has_signature(_query(scope)[1]):
                return await self.application(scope, receive, send)
            return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)

"""WebSocket authentication and origin checks, producing `scope["party"]` for the consumers.

Three ways in, as on the REST API: the portal's session cookie; a VirtEngine wallet signature in the
query (`ve_address`, `ve_ts`, `ve_nonce`, `ve_sig`, `ve_pub`, signed as a `GET` of the socket's path
with no body); a provider HMAC credential in the query (`ve_principal`, `ve_ts`, `ve_hmac`, and for the
stronger version `ve_nonce`, signed over the query without those). Rules:

- a connection carrying any signature parameter (any `ve_*` query parameter) is judged by the signature
  alone: a bad or incomplete one is refused, never "rescued" by a session cookie riding along; one with
  an `X-VE-*` header is refused (the REST API's precedence rule: such a header means a signed request,
  and a socket is signed in its query);
- a cookie is only honoured with an Origin that is ours: the same scheme, host and port as the request
  itself (and a host in ALLOWED_HOSTS), or one of VE_WS_ALLOWED_ORIGINS. A foreign Origin is refused
  before the session is even looked at, so another site cannot learn whether its visitor is signed in.

Nothing is refused at the handshake: the middleware records a `Refusal` in `scope["refusal"]` and the
consumer accepts, then closes with its code, so clients can tell what went wrong (an HTTP 403 at the
handshake says nothing). `scope["credential"]` says how the socket authenticated, so that the fan-out
hub can re-check it every VE_WS_RESYNC_SECONDS (`credentials_recheck`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlparse, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from accounts import hmac_signing
from accounts.services import hmac_signature_verify, wallet_signature_verify
from core import wallet
from core.parties import Party
from core.signing_common import SIGNED_QUERY_PREFIX, carries_signature
from providers.selectors import address_has_standing, credentials_active, party_for_address, party_for_user

# Close codes (documented in the README and tickets/consumers.py).
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429

WALLET_PARAMS = frozenset({wallet.QUERY_ADDRESS, wallet.QUERY_SIGNATURE, wallet.QUERY_PUBKEY})
HMAC_PARAMS = frozenset({hmac_signing.QUERY_PRINCIPAL, hmac_signing.QUERY_SIGNATURE})
# Shared by both schemes: on their own they still mean "a signature was meant".
SHARED_PARAMS = frozenset({wallet.QUERY_TIMESTAMP, wallet.QUERY_NONCE})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HTTP_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class Refusal:
    code: int
    reason: str


@dataclass(frozen=True)
class SocketCredential:
    """How a socket authenticated: `scheme` is session, wallet or hmac; `subject` the session key, the
    wallet address or the HMAC principal; `user_id` the session's user."""

    scheme: str
    subject: str
    user_id: int | None = None

    @property
    def identity(self) -> str:
        """Who holds the credential, for per-party socket caps (a person or a machine, not a company)."""
        if self.scheme == "session":
            return f"user:{self.user_id}"
        return f"{self.scheme}:{self.subject}"


# (party, refusal, credential) of a WebSocket handshake: a party and its credential, or a refusal.
Handshake = tuple[Party | None, Refusal | None, SocketCredential | None]


def query_params(scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
    raw = scope.get("query_string", b"").decode("latin1")
    return raw, {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin1")
    return None


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        scheme = _HTTP_SCHEME.get(parts.scheme.lower())
        port = parts.port
    except ValueError:
        return None
    if scheme is None or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The origin this request was made to: its scheme and Host header, if the host is one of ours."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = _HTTP_SCHEME.get(str(scope.get("scheme") or "ws"), "http")
    try:
        return scheme, domain, int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """The Origin header names this very server (scheme, host and port), or a configured origin."""
    origin = _header(scope, b"origin")
    claimed = _origin_tuple(origin) if origin else None
    if claimed is None:
        return False
    if claimed == _own_origin(scope):
        return True
    return claimed in {_origin_tuple(allowed) for allowed in settings.VE_WS_ALLOWED_ORIGINS}


NO_ROLE = "This key has no role here: it is no provider's and owns no deployment."


def wallet_party_has_role(party: Party) -> bool:
    """A wallet key holds sockets only as a provider or as the owner of a deployment."""
    return not party.is_customer or address_has_standing(party.address)


def _signed_path(scope: dict[str, Any]) -> str:
    path: str = scope.get("raw_path", b"").decode("latin1") or scope["path"]
    return urlparse(path).path


def _signature_headers(scope: dict[str, Any]) -> bool:
    return carries_signature(key.decode("latin1") for key, _ in scope.get("headers", []))


def _by_signature(scope: dict[str, Any], raw_query: str, params: dict[str, str]) -> Handshake:
    """(party, refusal, credential) for a connection that carries signature parameters (or headers)."""
    wallet_meant = bool(WALLET_PARAMS & params.keys())
    hmac_meant = bool(HMAC_PARAMS & params.keys())
    reason = ""
    if _signature_headers(scope):
        reason = "X-VE-* headers: sign a socket in its query (ve_*)"
    elif wallet_meant == hmac_meant:
        reason = "both a wallet signature and an HMAC credential" if wallet_meant else "no signature"
    if reason:
        return None, Refusal(CLOSE_UNAUTHENTICATED, f"Signature parameters with {reason}."), None
    path = _signed_path(scope)
    if wallet_meant:
        fields = wallet.wallet_fields_from_query(params) or {}
        try:
            party = wallet_signature_verify(fields=fields, method="GET", path=path, raw_body=b"")
        except wallet.WalletAuthError as error:
            return None, Refusal(CLOSE_UNAUTHENTICATED, f"Wallet signature refused: {error.message}"), None
        if not wallet_party_has_role(party):
            return None, Refusal(CLOSE_FORBIDDEN, NO_ROLE), None
        return party, None, SocketCredential("wallet", party.address)
    fields = hmac_signing.hmac_fields_from_query(params) or {"principal": None}
    try:
        party = hmac_signature_verify(
            fields=fields,
            method="GET",
            path=path,
            raw_query=hmac_signing.raw_query_without_auth(raw_query),
        )
    except hmac_signing.HmacAuthError as error:
        return None, Refusal(CLOSE_UNAUTHENTICATED, f"HMAC signature refused: {error.message}"), None
    return party, None, SocketCredential("hmac", fields["principal"] or "")


@database_sync_to_async
def authenticate_socket(scope: dict[str, Any]) -> Handshake:
    """(party, refusal, credential) of a WebSocket handshake; exactly one of party and refusal is set."""
    raw_query, params = query_params(scope)
    if _signature_headers(scope) or carries_signature(params, SIGNED_QUERY_PREFIX):
        return _by_signature(scope, raw_query, params)
    if _header(scope, b"origin") is None:
        return None, Refusal(CLOSE_UNAUTHENTICATED, "Sign the request (ve_sig or ve_hmac)."), None
    if not origin_allowed(scope):
        return None, Refusal(CLOSE_FORBIDDEN, "This Origin may not open sockets here."), None
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None, Refusal(CLOSE_UNAUTHENTICATED, "Authentication required."), None
    party = party_for_user(user)
    if party is None:
        return None, Refusal(CLOSE_FORBIDDEN, "No customer, provider or support role."), None
    session_key = getattr(scope.get("session"), "session_key", None) or ""
    return party, None, SocketCredential("session", session_key, user.pk)


class PartyMiddleware:
    """Resolves the acting party (after Channels' session middleware has set `scope["user"]`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        party, refusal, credential = await authenticate_socket(scope)
        scope = {**scope, "party": party, "refusal": refusal, "credential": credential}
        return await self.inner(scope, receive, send)


def WebSocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return AuthMiddlewareStack(PartyMiddleware(inner))


def _session_user(session_key: str) -> Any:
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # Django's own check: the session exists, names a user of a configured backend, and its auth hash
    # still matches (a password change signs every session out).
    request = HttpRequest()
    request.session = store
    return auth.get_user(request)


def credentials_recheck(credentials: set[SocketCredential]) -> dict[SocketCredential, Party | int]:
    """Who each socket credential acts as now, or the close code once it no longer does: 4401 for a
    revoked HMAC credential or an ended session, 4403 for a user who lost every role."""
    principals = {c.subject for c in credentials if c.scheme == "hmac"}
    active = credentials_active(principals) if principals else {}
    now: dict[SocketCredential, Party | int] = {}
    for credential in credentials:
        if credential.scheme == "hmac":
            now[credential] = active.get(credential.subject, CLOSE_UNAUTHENTICATED)
        elif credential.scheme == "wallet":
            party = party_for_address(credential.subject)
            now[credential] = party if wallet_party_has_role(party) else CLOSE_FORBIDDEN
        else:
            user = _session_user(credential.subject)
            if not user.is_authenticated or user.pk != credential.user_id:
                now[credential] = CLOSE_UNAUTHENTICATED
            else:
                now[credential] = party_for_user(user) or CLOSE_FORBIDDEN
    return now

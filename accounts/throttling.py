"""Rate limits per acting party (a customer address, a provider, a support agent), and per client address
where a party alone would not bind.

A fixed-window counter in Redis (INCR + EXPIRE in one round trip): O(1) per request, unlike DRF's
SimpleRateThrottle, which loads and re-stores the party's whole request history each time. Reads share
one budget per party; writes also count against a smaller budget of their own. When Redis is down the
request is served unthrottled rather than failed.

Anyone can make a wallet key, so a party with no role (an address that is no provider and owns no
deployment, however it authenticates: signing in to the portal gives a key no role) would get a fresh
budget per key: such callers share one smaller budget per client address (`roleless`, `roleless_write`). Failed authentications count per client address too
(`VE_API_AUTH_FAILURES_PER_ADDRESS`); past it, signatures from that address are not even checked.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from core.cache import redis_client
from core.parties import Party
from providers.selectors import address_has_standing, party_for_user

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while `rest_framework.views` is initialising.
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where a request's acting party is kept once computed, by the throttles or by
# `accounts.authentication.request_party`, whichever asks first.
PARTY_ATTRIBUTE = "_ve_party"
DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"1200/min"` → (1200 requests, 60 seconds)."""
    count, period = rate.split("/")
    return int(count), DURATIONS[period[0]]


def client_address(request: Request | HttpRequest) -> str:
    meta = getattr(request, "_request", request).META
    return str(meta.get("REMOTE_ADDR") or "unknown")


def _acting_party(request: Request) -> Party | None:
    party = getattr(request, "auth", None)
    if isinstance(party, Party):
        return party
    party = getattr(request, PARTY_ATTRIBUTE, None)
    if party is None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        party = party_for_user(user)
        # What accounts.authentication.request_party would compute again.
        setattr(request, PARTY_ATTRIBUTE, party)
    return party


def _identity(request: Request) -> tuple[str, bool] | None:
    """(who pays, whether they have a role) for this request; None for the anonymous. A customer owning
    no deployment has no role however it authenticated (a fresh key, or a portal account it made by
    signing in with one): all such callers from one client address share one budget."""
    party = _acting_party(request)
    if party is None:
        user = getattr(request, "user", None)
        return (f"user:{user.pk}", False) if user is not None and user.is_authenticated else None
    if party.is_customer and not (party.address and address_has_standing(party.address)):
        return f"address:{client_address(request)}", False
    return party.key, True


class PartyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        found = _identity(request)
        if found is None:
            return True
        identity, has_role = found
        prefix = "party" if has_role else "roleless"
        scopes = [prefix] if request.method in SAFE_METHODS else [prefix, f"{prefix}_write"]
        try:
            for scope in scopes:
                wait = _count(scope, identity)
                if wait is not None:
                    self.retry_after = wait
                    return False
        except Exception:  # Redis unreachable: serve the request unthrottled rather than fail it
            logger.warning("throttle store unavailable; request not throttled", exc_info=True)
        return True

    def wait(self) -> float | None:
        return self.retry_after


def _window(rate: str, scope: str, identity: str) -> tuple[int, str, float]:
    """(limit, counter key, seconds until the window ends)."""
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    key = cache.make_and_validate_key(f"throttle:{scope}:{identity}:{window}")
    return limit, key, max(1.0, (window + 1) * period - now)


def _count(scope: str, identity: str) -> float | None:
    """Count one request against `scope`; the wait in seconds if that was one too many, else None."""
    # DRF's rates are "count/period" strings; djangorestframework-stubs types them as numbers.
    rate: str | None = api_settings.DEFAULT_THROTTLE_RATES.get(scope)  # type: ignore[assignment]
    if not rate:
        return None
    limit, key, wait = _window(rate, scope, identity)
    return None if _increment(key, wait) <= limit else wait


def _increment(key: str, wait: float) -> int:
    # One round trip, without MULTI/EXEC: the two commands go in one write and Redis runs them in turn;
    # only a Redis crash between them could leave the counter without its expiry, and it then loses both.
    pipeline = redis_client(key, write=True).pipeline(transaction=False)
    pipeline.incr(key)
    pipeline.expire(key, int(wait) + 2)
    count: int
    count, _ = pipeline.execute()
    return count


def address_budget_spend(scope: str, rate: str, request: Request | HttpRequest) -> float | None:
    """Count one use of `scope` (at most `rate`) by the request's client address: the seconds to wait
    if that was one too many, else None (also when Redis is down: served rather than failed)."""
    limit, key, wait = _window(rate, scope, client_address(request))
    try:
        return None if _increment(key, wait) <= limit else wait
    except Exception:
        logger.warning("throttle store unavailable; %s not counted", scope, exc_info=True)
        return None


AUTH_FAILURES = "auth_failures"


def auth_failures_wait(request: Request | HttpRequest) -> float | None:
    """Seconds this client address must wait because of its failed authentications, or None."""
    limit, key, wait = _window(
        settings.VE_API_AUTH_FAILURES_PER_ADDRESS, AUTH_FAILURES, client_address(request)
    )
    try:
        count = redis_client(key).get(key)
    except Exception:
        logger.warning("throttle store unavailable; authentication failures not checked", exc_info=True)
        return None
    return wait if count is not None and int(count) >= limit else None


def auth_failure_record(request: Request | HttpRequest) -> None:
    """Count a failed authentication against the client address."""
    _, key, wait = _window(settings.VE_API_AUTH_FAILURES_PER_ADDRESS, AUTH_FAILURES, client_address(request))
    try:
        _increment(key, wait)
    except Exception:
        logger.warning("throttle store unavailable; authentication failure not counted", exc_info=True)


# ---------------------------------------------------------------------------------------------------------
# WebSocket caps: open sockets per credential holder and per client address, across every web process.
# Each key is a Redis sorted set of socket ids scored by when their claim lapses; the fan-out hub renews
# its sockets' claims every VE_WS_RESYNC_SECONDS, so a process that dies leaks nothing for long.

_CLAIM_SCRIPT = """
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
    if redis.call('ZSCORE', key, ARGV[3]) == false
        and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
        return i
    end
end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, ARGV[2], ARGV[3])
    redis.call('EXPIRE', key, math.ceil(ARGV[2] - ARGV[1]) + 1)
end
return 0
"""


def socket_claim_lifetime() -> float:
    return float(3 * settings.VE_WS_RESYNC_SECONDS + 30)


def _slot_keys(identity: str, client_address: str) -> list[str]:
    return [
        cache.make_and_validate_key(f"ws:party:{identity}"),
        cache.make_and_validate_key(f"ws:addr:{client_address}"),
    ]


def socket_slot_claim(*, socket_id: str, identity: str, client_address: str) -> bool:
    """Count one more open socket for its holder and its address; False when either is at its cap."""
    keys = _slot_keys(identity, client_address)
    limits = [settings.VE_WS_MAX_SOCKETS_PER_PARTY, settings.VE_WS_MAX_SOCKETS_PER_CLIENT_ADDRESS]
    now = time.time()
    try:
        client = redis_client(keys[0], write=True)
        over: int = client.eval(
            _CLAIM_SCRIPT, len(keys), *keys, now, now + socket_claim_lifetime(), socket_id, *limits
        )
    except Exception:  # Redis unreachable: let the socket in rather than fail it (as the API throttles do)
        logger.warning("socket cap store unavailable; socket not counted", exc_info=True)
        return True
    return over == 0


def socket_slots_renew(claims: list[tuple[str, str, str]]) -> None:
    """Renew (socket id, holder, address) claims of sockets still open (the hub, every resync)."""
    if not claims:
        return
    expires = time.time() + socket_claim_lifetime()
    try:
        pipeline = redis_client(None, write=True).pipeline(transaction=False)
        for socket_id, identity, client_address in claims:
            for key in _slot_keys(identity, client_address):
                pipeline.zadd(key, {socket_id: expires}, xx=True)
        pipeline.execute()
    except Exception:
        logger.warning("socket cap store unavailable; claims not renewed", exc_info=True)


def socket_slot_release(*, socket_id: str, identity: str, client_address: str) -> None:
    try:
        pipeline = redis_client(None, write=True).pipeline(transaction=False)
        for key in _slot_keys(identity, client_address):
            pipeline.zrem(key, socket_id)
        pipeline.execute()
    except Exception:
        logger.warning("socket cap store unavailable; claim left to lapse", exc_info=True)

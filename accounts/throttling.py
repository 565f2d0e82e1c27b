"""Rate limits per acting party (a customer address, a provider, a support agent), not per IP.

A fixed-window counter in Redis (INCR + EXPIRE in one round trip): O(1) per request, unlike DRF's
SimpleRateThrottle, which loads and re-stores the party's whole request history each time. Reads share
one budget per party; writes also count against a smaller budget of their own. When Redis is down the
request is served unthrottled rather than failed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from core.parties import Party

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while `rest_framework.views` is initialising.
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"1200/min"` → (1200 requests, 60 seconds)."""
    count, period = rate.split("/")
    return int(count), DURATIONS[period[0]]


def _identity(request: Request) -> str | None:
    party = getattr(request, "auth", None)
    if isinstance(party, Party):
        return party.key
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return f"user:{user.pk}"


class PartyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        identity = _identity(request)
        if identity is None:
            return True
        scopes = ["party"] if request.method in SAFE_METHODS else ["party", "party_write"]
        try:
            return all(self._within(scope, identity) for scope in scopes)
        except Exception:  # Redis unreachable: serve the request unthrottled rather than fail it
            logger.warning("throttle store unavailable; request not throttled", exc_info=True)
            return True

    def _within(self, scope: str, identity: str) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        if not rate:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = cache.make_and_validate_key(f"throttle:{scope}:{identity}:{window}")
        client = cache._cache.get_client(key, write=True)
        pipeline = client.pipeline()
        pipeline.incr(key)
        pipeline.expire(key, period + 1)
        count, _ = pipeline.execute()
        if count <= limit:
            return True
        self.retry_after = max(1.0, (window + 1) * period - now)
        return False

    def wait(self) -> float | None:
        return self.retry_after

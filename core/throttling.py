"""Rate limits per acting party (a customer address, a provider, a support agent), not per IP."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core.parties import Party

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while `rest_framework.views` is initialising.
    from rest_framework.views import APIView

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PartyRateThrottle(SimpleRateThrottle):
    """Reads share one budget per party; writes have a smaller budget of their own as well."""

    scope = "party"

    def get_rate(self) -> str | None:
        # Read the rates at request time so settings overrides (tests, environment) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        party = getattr(request, "auth", None)
        if not isinstance(party, Party):
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None
            key = f"user:{user.pk}"
        else:
            key = party.key
        return self.cache_format % {"scope": self.scope, "ident": key}

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return self._allow(request, view)
        except Exception:  # Redis unreachable: serve the request unthrottled rather than fail it
            logger.warning("throttle store unavailable; request not throttled", exc_info=True)
            return True

    def _allow(self, request: Request, view: APIView) -> bool:
        if not super().allow_request(request, view):
            return False
        if request.method in SAFE_METHODS:
            return True
        writes = PartyWriteRateThrottle()
        if writes.allow_request(request, view):
            return True
        self.wait = writes.wait  # type: ignore[method-assign]
        return False


class PartyWriteRateThrottle(PartyRateThrottle):
    scope = "party_write"

    def __init__(self) -> None:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request: Request, view: APIView) -> bool:
        return SimpleRateThrottle.allow_request(self, request, view)

"""Signing in to the portal and out of it: a password form, or a wallet signing a single-use challenge.

The wallet flow is two JSON calls from the sign-in page's script: `challenge` (the text to sign, for an
address) and `verify` (the signature, the public key and which wallet call made it). The services check
the signature and pick the user; these views only translate HTTP and start the session.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services, throttling
from core.errors import ApplicationError, NotAuthenticated, RateLimited, ValidationFailed
from core.formats import iso_timestamp
from core.parsers import json_object_from_request
from providers.selectors import address_has_portal_account

SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _next_url(request: HttpRequest, source: dict[str, Any]) -> str:
    """Where to go after signing in: the `next` the person came with, if it is one of ours."""
    candidate = source.get("next") or ""
    if isinstance(candidate, str) and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """`/`: the person's tickets once signed in, else the sign-in page."""
    return redirect("portal-ticket-list" if request.user.is_authenticated else "sign-in")


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    """The sign-in page: a password form, and the wallet buttons (driven by portal/sign-in.js)."""
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.get_user(), backend=SESSION_BACKEND)
        return redirect(_next_url(request, request.POST))
    context = {
        "form": form,
        "next": _next_url(request, request.GET if request.method == "GET" else request.POST),
        "chain_id": settings.VE_CHAIN_ID,
        "chain_info": json.dumps(wallet_chain_info()),  # an attribute: no inline script under the CSP
    }
    return render(request, "portal/sign_in.html", context, status=400 if form.errors else 200)


def wallet_chain_info() -> dict[str, Any]:
    """The chain as Keplr's and Leap's `experimentalSuggestChain` take it (from settings), so a wallet that
    does not know the chain can add it before `enable` instead of failing there."""
    prefix = settings.VE_BECH32_PREFIX
    coin = {
        "coinDenom": settings.VE_CHAIN_COIN_DENOM,
        "coinMinimalDenom": settings.VE_CHAIN_COIN_MINIMAL_DENOM,
        "coinDecimals": settings.VE_CHAIN_COIN_DECIMALS,
    }
    return {
        "chainId": settings.VE_CHAIN_ID,
        "chainName": settings.VE_CHAIN_NAME,
        "rpc": settings.VE_CHAIN_RPC_URL,
        "rest": settings.VE_CHAIN_REST_URL,
        "bip44": {"coinType": 118},
        "bech32Config": {
            "bech32PrefixAccAddr": prefix,
            "bech32PrefixAccPub": f"{prefix}pub",
            "bech32PrefixValAddr": f"{prefix}valoper",
            "bech32PrefixValPub": f"{prefix}valoperpub",
            "bech32PrefixConsAddr": f"{prefix}valcons",
            "bech32PrefixConsPub": f"{prefix}valconspub",
        },
        "currencies": [coin],
        "feeCurrencies": [{**coin, "gasPriceStep": {"low": 0, "average": 0.025, "high": 0.04}}],
        "stakeCurrency": coin,
        "features": [],
    }


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"{field} is required.", fields={field: ["A non-empty string is required."]})
    return value


def _refusal(error: ApplicationError) -> JsonResponse:
    response = JsonResponse(error.as_dict(), status=error.status_code)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def _rate_limited(request: HttpRequest) -> RateLimited | None:
    """Sign-in calls per client address, and its failed verifications (shared with signed API calls)."""
    wait = throttling.address_budget_spend("sign_in", settings.VE_SIGN_IN_RATE_PER_ADDRESS, request)
    if wait is not None:
        return RateLimited(
            "Too many sign-in attempts from your address; wait and try again.", retry_after=wait
        )
    wait = throttling.auth_failures_wait(request)
    if wait is not None:
        return RateLimited("Too many failed authentications from your address.", retry_after=wait)
    return None


def _new_account_refused(request: HttpRequest, address: str) -> RateLimited | None:
    """Every fresh key that signs in would create a user: a client address may create only so many."""
    if address_has_portal_account(address):
        return None
    wait = throttling.address_budget_spend(
        "sign_in_new_account", settings.VE_SIGN_IN_NEW_ACCOUNTS_PER_ADDRESS, request
    )
    if wait is None:
        return None
    return RateLimited(
        "Too many new accounts from your address; sign in with a wallet used here before, or wait.",
        retry_after=wait,
        code="too_many_accounts",
    )


@require_POST
def wallet_challenge(request: HttpRequest) -> JsonResponse:
    """`{"address"}` → `{"text", "token", "chain_id", "expires_at"}`: what the wallet is to sign."""
    try:
        if limited := _rate_limited(request):
            raise limited
        challenge = services.wallet_sign_in_challenge(
            address=_text(json_object_from_request(request), "address")
        )
    except ApplicationError as error:
        return _refusal(error)
    return JsonResponse(
        {
            "text": challenge.text,
            "token": challenge.token,
            "chain_id": challenge.chain_id,
            "expires_at": iso_timestamp(challenge.expires_at),
        }
    )


@require_POST
def wallet_verify(request: HttpRequest) -> JsonResponse:
    """`{"token", "address", "signature", "pub_key", "mode", "next"?}` → a session, and where to go next."""
    try:
        if limited := _rate_limited(request):
            raise limited
        body = json_object_from_request(request)
        try:
            address = services.wallet_sign_in_verify(
                token=_text(body, "token"),
                address=_text(body, "address"),
                signature=_text(body, "signature"),
                pub_key=_text(body, "pub_key"),
                mode=_text(body, "mode"),
            )
        except NotAuthenticated:
            throttling.auth_failure_record(request)
            raise
        if refused := _new_account_refused(request, address):
            raise refused
    except ApplicationError as error:
        return _refusal(error)
    login(request, services.wallet_user_for(address), backend=SESSION_BACKEND)
    return JsonResponse({"redirect": _next_url(request, body)})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("sign-in")

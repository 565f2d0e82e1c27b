"""Reads about providers, deployments and identities, and who a signed-in user is (their Party)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, Permission, User
from django.db.models import Exists, OuterRef, QuerySet

from core.errors import NotFound
from core.parties import Party, PartyKind, party_in_slots, scope_of, scope_slots
from core.statements import StatementCache
from providers.models import CustomerIdentity, Deployment, ProviderAccount, ProviderCredential

SUPPORT_GROUP = "support"


def user_is_support(user: User | AnonymousUser) -> bool:
    """VirtEngine staff: `is_staff` and in the support group (superusers count as support)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(user.is_staff and user.groups.filter(name=SUPPORT_GROUP).exists())


@dataclass(frozen=True)
class SupportAccess:
    """What the support console asks of its user on every page: who they act as, and whether they may act."""

    party: Party | None  # the support party the user acts as; None for anyone else
    permitted: bool  # holds the permission asked about


# The console's question about its user, compiled once per permission (core.statements).
_SUPPORT_ACCESS = StatementCache(size=8)


def support_access(user: User | AnonymousUser, permission: str) -> SupportAccess:
    """Whether the user is support (`user_is_support`) and, if so, holds `permission` ("app_label.codename")
    as `user.has_perm` decides it with the model backend (theirs or one of their groups'; every one for
    superusers), in one query for the two."""
    if not user.is_authenticated or not user.is_active or not (user.is_staff or user.is_superuser):
        return SupportAccess(party=None, permitted=False)
    party = Party(kind=PartyKind.SUPPORT, label=user.get_username(), user_id=user.pk)
    if user.is_superuser:
        return SupportAccess(party=party, permitted=True)
    app_label, codename = permission.split(".", 1)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        memberships = User.groups.through.objects.filter(user_id=OuterRef("pk"))
        granted = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        return User.objects.filter(pk=slots["user"]).values(
            support=Exists(memberships.filter(group__name=SUPPORT_GROUP)),
            own=Exists(granted.filter(user=OuterRef("pk"))),
            grouped=Exists(granted.filter(group__user=OuterRef("pk"))),
        )

    rows = _SUPPORT_ACCESS.rows(permission, build, {"user": user.pk})
    if not rows or not rows[0]["support"]:
        return SupportAccess(party=None, permitted=False)
    return SupportAccess(party=party, permitted=rows[0]["own"] or rows[0]["grouped"])


def party_for_user(user: User | AnonymousUser) -> Party | None:
    """The party a portal/admin user acts as: support, then provider member, then customer.

    A user with none of these roles is no party at all (None) and sees nothing.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    label = user.get_username()
    if user_is_support(user):
        return Party(kind=PartyKind.SUPPORT, label=label, user_id=user.pk)
    membership = getattr(user, "provider_membership", None)
    if membership is not None:
        provider = membership.provider
        # A provider signed in with its own wallet (its user is named by its address) is the provider.
        member = provider.name if label == provider.address else f"{label} ({provider.name})"
        return Party(
            kind=PartyKind.PROVIDER,
            label=member,
            user_id=user.pk,
            address=provider.address,
            provider_id=provider.pk,
        )
    identity = getattr(user, "customer", None)
    if identity is not None:
        # A customer signed in with a wallet only is named by a short form of the address.
        name = short_address(label) if label == identity.address else label
        return Party(kind=PartyKind.CUSTOMER, label=name, user_id=user.pk, address=identity.address)
    return None


def provider_by_address(address: str) -> ProviderAccount | None:
    """The provider whose wallet address this is, if any."""
    return ProviderAccount.objects.filter(address=address).first()


def party_for_address(address: str) -> Party:
    """A wallet-signed caller: a provider if the address is a provider's, else a customer."""
    provider = provider_by_address(address)
    if provider is not None:
        return provider_party(provider)
    identity = CustomerIdentity.objects.select_related("user").filter(address=address).first()
    user = identity.user if identity is not None else None
    return Party(
        kind=PartyKind.CUSTOMER,
        label=user.get_username() if user is not None else short_address(address),
        user_id=user.pk if user is not None else None,
        address=address,
    )


STANDING_CACHE_SECONDS = 60.0
_standing_cache: dict[str, float] = {}


def address_has_standing(address: str) -> bool:
    """Whether a wallet address that is no provider has a role here: it owns a deployment (the only way
    a customer has tickets to see or a lease to open one on). A portal account does not count: anyone
    can make a key and sign in with it. Known ones are remembered in this process for a minute (fresh
    keys, the case that matters, never are)."""
    now = time.monotonic()
    seen = _standing_cache.get(address)
    if seen is not None and now - seen < STANDING_CACHE_SECONDS:
        return True
    known = Deployment.objects.filter(owner_address=address).exists()
    if known:
        if len(_standing_cache) > 10_000:
            _standing_cache.clear()
        _standing_cache[address] = now
    return known


def address_has_portal_account(address: str) -> bool:
    """Whether signing in with this wallet address finds a user rather than creating one."""
    return (
        ProviderAccount.objects.filter(address=address).exists()
        or CustomerIdentity.objects.filter(address=address, user__isnull=False).exists()
    )


def provider_party(provider: ProviderAccount) -> Party:
    """The provider itself acting (a machine credential or its own wallet), not one member."""
    return Party(
        kind=PartyKind.PROVIDER, label=provider.name, address=provider.address, provider_id=provider.pk
    )


def short_address(address: str) -> str:
    return f"{address[:10]}…{address[-4:]}" if len(address) > 16 else address


CREDENTIAL_CACHE_SECONDS = 5.0
_credential_cache: dict[str, tuple[float, ProviderCredential]] = {}


def credential_get_active(principal: str) -> ProviderCredential | None:
    """The active credential with its provider. Found ones are remembered in this process for a few
    seconds (provider machines call in bursts), so a revocation takes effect within 5 s."""
    now = time.monotonic()
    cached = _credential_cache.get(principal)
    if cached is not None and now - cached[0] < CREDENTIAL_CACHE_SECONDS:
        return cached[1]
    credential = (
        ProviderCredential.objects.select_related("provider")
        .filter(principal=principal, revoked_at__isnull=True)
        .first()
    )
    if credential is None:
        _credential_cache.pop(principal, None)
        return None
    if len(_credential_cache) > 10_000:
        _credential_cache.clear()
    _credential_cache[principal] = (now, credential)
    return credential


def credentials_active(principals: set[str]) -> dict[str, Party]:
    """principal → the provider acting, for those of `principals` that are still active (no cache: sockets
    re-check their credential with it, and a revocation must close them)."""
    credentials = ProviderCredential.objects.select_related("provider").filter(
        principal__in=principals, revoked_at__isnull=True
    )
    return {credential.principal: provider_party(credential.provider) for credential in credentials}


def credential_cache_clear() -> None:
    _credential_cache.clear()
    _standing_cache.clear()


def deployments_visible_to(party: Party) -> QuerySet[Deployment]:
    """Deployments a party may pick for a ticket: a customer's own, a provider's leases, all for support."""
    deployments = Deployment.objects.select_related("provider")
    scope = scope_of(party)
    if scope.everything:
        return deployments
    if scope.provider_id is not None:
        return deployments.filter(provider_id=scope.provider_id)
    if scope.customer_address:
        return deployments.filter(owner_address=scope.customer_address)
    return deployments.none()


DEPLOYMENT_LIST_LIMIT = 500


def deployment_list(party: Party) -> list[Deployment]:
    """The party's deployments, newest first (the create form's picker): at most DEPLOYMENT_LIST_LIMIT."""
    return list(deployments_visible_to(party).order_by("-created_at")[:DEPLOYMENT_LIST_LIMIT])


# The pickers' query, compiled once per kind of scope (core.statements): the ticket list reads it on every view.
_DEPLOYMENT_CHOICES = StatementCache(size=8)


def deployment_choices(party: Party) -> list[tuple[str, str]]:
    """(lease ID, name) of the party's deployments, newest first: the portal's pickers."""
    shape, values = scope_slots(party)

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        deployments = deployments_visible_to(party_in_slots(party, slots)).order_by("-created_at")
        return deployments.values("lease_id", "name")[:DEPLOYMENT_LIST_LIMIT]

    return [(row["lease_id"], row["name"]) for row in _DEPLOYMENT_CHOICES.rows(shape, build, values)]


def deployment_get_for(party: Party, lease_id: str) -> Deployment:
    """A deployment the party may see, by lease ID; NotFound otherwise (whether missing or hidden)."""
    deployment = deployments_visible_to(party).filter(lease_id=lease_id).first()
    if deployment is None:
        raise NotFound("Deployment not found.", fields={"deployment_id": ["No such deployment of yours."]})
    return deployment

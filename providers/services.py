"""Writes about providers, their members and credentials, deployments and identities.

These are operator actions (management commands, the admin, chain sync later): they bootstrap an
installation without a chain.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.access import access_change_announce
from core.addresses import is_valid_address
from core.errors import Conflict, ValidationFailed
from core.secrets import encrypt_secret
from core.text import clean_text
from providers.models import (
    CustomerIdentity,
    Deployment,
    ProviderAccount,
    ProviderCredential,
    ProviderMembership,
)
from providers.selectors import SUPPORT_GROUP, credential_cache_clear

LEASE_ID_PATTERN = re.compile(
    r"^(?P<owner>[a-z0-9]+)/(?P<dseq>\d{1,19})/(?P<gseq>\d{1,9})/(?P<oseq>\d{1,9})$"
)


@dataclass(frozen=True)
class IssuedCredential:
    credential: ProviderCredential
    secret: str


NAME_MAX_LENGTH = 120  # provider and deployment names, credential labels (the columns' length)


def _require_address(field: str, address: str) -> None:
    if not is_valid_address(address):
        raise ValidationFailed(
            f"{field} is not a valid chain address.",
            fields={field: ["Expected a bech32 address with the chain's prefix."]},
        )


def _require_envelope_key(public_key_b64: str) -> None:
    if not public_key_b64:
        return
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValidationFailed(
            "envelope_public_key must be a base64 X25519 public key.",
            fields={"envelope_public_key": ["Expected 32 bytes, base64-encoded."]},
        )


def provider_create(
    *, address: str, name: str, api_endpoint: str = "", envelope_public_key: str = ""
) -> ProviderAccount:
    _require_address("address", address)
    _require_envelope_key(envelope_public_key)
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, single_line=True)
    try:
        with transaction.atomic():
            return ProviderAccount.objects.create(
                address=address,
                name=name,
                api_endpoint=api_endpoint,
                envelope_public_key=envelope_public_key,
            )
    except IntegrityError as error:
        raise Conflict(
            f"A provider with address {address} already exists.", code="provider_exists"
        ) from error


def provider_api_endpoint_set(*, provider: ProviderAccount, api_endpoint: str) -> ProviderAccount:
    """Point the provider's log fetches (and any later call to its VirtEngine API) at `api_endpoint`."""
    if api_endpoint:
        try:
            URLValidator(schemes=["http", "https"])(api_endpoint)
        except DjangoValidationError as error:
            raise ValidationFailed(
                "api_endpoint must be an http(s) URL.",
                fields={"api_endpoint": ["Enter a valid http(s) URL."]},
            ) from error
    provider.api_endpoint = api_endpoint
    provider.save(update_fields=["api_endpoint"])
    return provider


def provider_credential_issue(*, provider: ProviderAccount, label: str = "") -> IssuedCredential:
    """Issue an HMAC credential. The secret is returned here once and stored only encrypted."""
    label = clean_text("label", label, max_length=NAME_MAX_LENGTH, required=False, single_line=True)
    principal = f"vep_{secrets.token_hex(12)}"
    secret = secrets.token_urlsafe(32)
    credential = ProviderCredential.objects.create(
        provider=provider, principal=principal, secret_ciphertext=encrypt_secret(secret), label=label
    )
    return IssuedCredential(credential=credential, secret=secret)


@transaction.atomic
def credential_revoke(*, credential: ProviderCredential) -> ProviderCredential:
    """Revoke an HMAC credential: its next request is refused, and every socket it opened is closed as
    soon as the revocation commits (this process forgets it at once; others' caches hold it for
    CREDENTIAL_CACHE_SECONDS at most). Revoking a revoked credential changes nothing."""
    locked = ProviderCredential.objects.select_for_update().get(pk=credential.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        transaction.on_commit(credential_cache_clear)
        access_change_announce(principals=[locked.principal])
    return locked


CREDENTIAL_TOUCH_INTERVAL = timedelta(minutes=1)


def credential_touch(*, credential: ProviderCredential) -> None:
    """Record that a credential was just used (at most once a minute: provider machines call in bursts)."""
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > CREDENTIAL_TOUCH_INTERVAL:
        ProviderCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now  # the object may be cached: keep it in step, or every call writes


def provider_member_add(
    *, provider: ProviderAccount, user: AbstractBaseUser, role: str = ProviderMembership.Role.MEMBER
) -> ProviderMembership:
    existing = ProviderMembership.objects.filter(user=user).select_related("provider").first()
    if existing is not None and existing.provider_id != provider.pk:
        raise Conflict(f"{user} already works for {existing.provider.name}.", code="member_of_other_provider")
    membership, _ = ProviderMembership.objects.update_or_create(
        user=user, defaults={"provider": provider, "role": role}
    )
    return membership


def parse_lease_id(lease_id: str) -> dict[str, str | int]:
    """Split `owner/dseq/gseq/oseq` into its parts, validating each."""
    match = LEASE_ID_PATTERN.match(lease_id or "")
    if match is None or not is_valid_address(match["owner"]):
        raise ValidationFailed(
            "deployment_id is not a lease ID.",
            fields={"deployment_id": ["Expected owner/dseq/gseq/oseq with a bech32 owner address."]},
        )
    return {
        "owner_address": match["owner"],
        "dseq": int(match["dseq"]),
        "gseq": int(match["gseq"]),
        "oseq": int(match["oseq"]),
    }


def deployment_register(*, lease_id: str, provider: ProviderAccount, name: str = "") -> Deployment:
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, required=False, single_line=True)
    parts = parse_lease_id(lease_id)
    try:
        with transaction.atomic():
            return Deployment.objects.create(lease_id=lease_id, provider=provider, name=name, **parts)
    except IntegrityError as error:
        raise Conflict(f"Deployment {lease_id} is already registered.", code="deployment_exists") from error


def customer_identity_link(
    *,
    address: str,
    user: AbstractBaseUser | None = None,
    envelope_public_key: str = "",
    email: str = "",
) -> CustomerIdentity:
    """Link a chain address to a portal user (or record a wallet-only identity when `user` is None), with
    the email address ticket notifications go to (the user's own when not given)."""
    _require_address("address", address)
    _require_envelope_key(envelope_public_key)
    defaults: dict[str, object] = {}
    if user is not None:
        defaults["user"] = user
    if envelope_public_key:
        defaults["envelope_public_key"] = envelope_public_key
    if email:
        try:
            validate_email(email)
        except DjangoValidationError as error:
            raise ValidationFailed(
                "email is not an email address.", fields={"email": list(error.messages)}
            ) from error
        defaults["email"] = email
    try:
        with transaction.atomic():
            identity, _ = CustomerIdentity.objects.update_or_create(address=address, defaults=defaults)
    except IntegrityError as error:
        raise Conflict("That user is already linked to another address.", code="identity_taken") from error
    return identity


def user_ensure(*, username: str, email: str = "", password: str | None = None) -> AbstractBaseUser:
    """The portal user `username`, created if missing. A given password is set; a user created without one
    gets an unusable password (it can only sign in once someone sets one)."""
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    elif created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def support_staff_create(*, username: str, email: str = "", password: str | None = None) -> AbstractBaseUser:
    """A VirtEngine support agent: staff, in the support group, with the admin permissions it needs."""
    with transaction.atomic():
        user = user_ensure(username=username, email=email, password=password)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        user.groups.add(support_group())
    return user


# What a support agent may do in the console unless a superuser grants more: see every support model,
# and work tickets (through the services). Editing providers, credentials or SLA policies is not included.
SUPPORT_APPS = ("tickets", "providers", "chain", "notifications")
SUPPORT_EXTRA_PERMISSIONS = (("tickets", "work_ticket"), ("notifications", "manage_webhooks"))


def support_group() -> Group:
    """The support group, with exactly the console's permissions (kept in step on every call)."""
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    wanted = Permission.objects.filter(content_type__app_label__in=SUPPORT_APPS, codename__startswith="view_")
    for app_label, codename in SUPPORT_EXTRA_PERMISSIONS:
        wanted = wanted | Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    group.permissions.set(wanted)
    return group

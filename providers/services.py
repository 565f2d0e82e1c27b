"""Writes about providers, their members and credentials, deployments and identities.

These are operator actions (management commands, the admin, chain sync later): they bootstrap an
installation without a chain. They are the one path for these changes: the admin's forms and actions call
them too, so an edit is checked as a creation is, and a change of who sees what is announced to the open
sockets (core.access) as it commits.

What names a thing on the chain never changes here: a provider's address, an identity's address, and a
deployment's lease ID with the owner and provider it names (a different owner is a different lease).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.access import access_change_announce
from core.addresses import is_valid_address
from core.errors import Conflict, NotFound, ValidationFailed
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
API_ENDPOINT_MAX_LENGTH = 200  # ProviderAccount.api_endpoint's column
EMAIL_MAX_LENGTH = 254  # CustomerIdentity.email's column


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


def _clean_api_endpoint(api_endpoint: str) -> str:
    api_endpoint = (api_endpoint or "").strip()
    if not api_endpoint:
        return ""
    refusal = ValidationFailed(
        "api_endpoint must be an http(s) URL.",
        fields={
            "api_endpoint": [f"Enter a valid http(s) URL of at most {API_ENDPOINT_MAX_LENGTH} characters."]
        },
    )
    if len(api_endpoint) > API_ENDPOINT_MAX_LENGTH:
        raise refusal
    try:
        URLValidator(schemes=["http", "https"])(api_endpoint)
    except DjangoValidationError as error:
        raise refusal from error
    return api_endpoint


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    if not email:
        return ""
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValidationFailed(
            "email is too long.",
            fields={"email": [f"Ensure this field has no more than {EMAIL_MAX_LENGTH} characters."]},
        )
    try:
        validate_email(email)
    except DjangoValidationError as error:
        raise ValidationFailed(
            "email is not an email address.", fields={"email": list(error.messages)}
        ) from error
    return email


def provider_create(
    *, address: str, name: str, api_endpoint: str = "", envelope_public_key: str = ""
) -> ProviderAccount:
    _require_address("address", address)
    _require_envelope_key(envelope_public_key)
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, single_line=True)
    api_endpoint = _clean_api_endpoint(api_endpoint)
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
    provider.api_endpoint = _clean_api_endpoint(api_endpoint)
    provider.save(update_fields=["api_endpoint"])
    return provider


@transaction.atomic
def provider_update(
    *, provider: ProviderAccount, name: str, api_endpoint: str, envelope_public_key: str
) -> ProviderAccount:
    """Set what may change of a provider, checked as at creation: its name, its API endpoint and the X25519
    key chain envelopes are sealed to (a key that is not one would make every later event unsealable).
    Its address is its identity on the chain and is never changed: another address is another provider."""
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, single_line=True)
    api_endpoint = _clean_api_endpoint(api_endpoint)
    _require_envelope_key(envelope_public_key)
    locked = ProviderAccount.objects.select_for_update().get(pk=provider.pk)
    locked.name, locked.api_endpoint, locked.envelope_public_key = name, api_endpoint, envelope_public_key
    locked.save(update_fields=["name", "api_endpoint", "envelope_public_key"])
    return locked


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


@transaction.atomic
def credential_update(
    *, credential: ProviderCredential, label: str, require_strong_signature: bool
) -> ProviderCredential:
    """Set a credential's label and whether it must sign with the stronger HMAC version. Every process
    forgets its cached copy: this one as the change commits, others within CREDENTIAL_CACHE_SECONDS. The
    secret and the principal never change (issue a new credential and revoke this one instead)."""
    label = clean_text("label", label, max_length=NAME_MAX_LENGTH, required=False, single_line=True)
    locked = ProviderCredential.objects.select_for_update().get(pk=credential.pk)
    locked.label, locked.require_strong_signature = label, bool(require_strong_signature)
    locked.save(update_fields=["label", "require_strong_signature"])
    transaction.on_commit(credential_cache_clear)
    return locked


CREDENTIAL_TOUCH_INTERVAL = timedelta(minutes=1)


def credential_touch(*, credential: ProviderCredential) -> None:
    """Record that a credential was just used (at most once a minute: provider machines call in bursts)."""
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > CREDENTIAL_TOUCH_INTERVAL:
        ProviderCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now  # the object may be cached: keep it in step, or every call writes


def _require_role(role: str) -> None:
    if role not in ProviderMembership.Role.values:
        raise ValidationFailed(
            f"{role!r} is not a provider role.",
            fields={"role": [f"Expected one of {', '.join(ProviderMembership.Role.values)}."]},
        )


@transaction.atomic
def provider_member_add(
    *, provider: ProviderAccount, user: User, role: str = ProviderMembership.Role.MEMBER
) -> ProviderMembership:
    """Make `user` a member of `provider` (or set the role of one already): the user now acts as the
    provider, and their open sockets are re-checked."""
    _require_role(role)
    existing = ProviderMembership.objects.filter(user=user).select_related("provider").first()
    if existing is not None and existing.provider_id != provider.pk:
        raise Conflict(f"{user} already works for {existing.provider.name}.", code="member_of_other_provider")
    membership, _ = ProviderMembership.objects.update_or_create(
        user=user, defaults={"provider": provider, "role": role}
    )
    if existing is None or existing.role != role:
        access_change_announce(user_ids=[user.pk])
    return membership


@transaction.atomic
def provider_member_role_set(*, membership: ProviderMembership, role: str) -> ProviderMembership:
    """Change a member's role within their provider (a move to another provider is a removal, then an
    addition)."""
    _require_role(role)
    locked = ProviderMembership.objects.select_for_update().filter(pk=membership.pk).first()
    if locked is None:
        raise NotFound("That membership no longer exists.", code="membership_not_found")
    if locked.role != role:
        locked.role = role
        locked.save(update_fields=["role"])
        access_change_announce(user_ids=[locked.user_id])
    return locked


@transaction.atomic
def provider_member_remove(*, membership: ProviderMembership) -> None:
    """The user no longer works for the provider: from the commit on they see none of its tickets, and
    their open sockets are re-checked at once. Removing a removed membership changes nothing. (A provider's
    own wallet user is made a member again when it next signs in with that wallet.)"""
    locked = ProviderMembership.objects.select_for_update().filter(pk=membership.pk).first()
    if locked is None:
        return
    user_id = locked.user_id
    locked.delete()
    access_change_announce(user_ids=[user_id])


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
    """Record a lease. Its ID names its owner (`owner/dseq/gseq/oseq`), who sees its tickets; with the
    provider serving it, that never changes: a lease with another owner or provider is another lease."""
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, required=False, single_line=True)
    parts = parse_lease_id(lease_id)
    try:
        with transaction.atomic():
            return Deployment.objects.create(lease_id=lease_id, provider=provider, name=name, **parts)
    except IntegrityError as error:
        raise Conflict(f"Deployment {lease_id} is already registered.", code="deployment_exists") from error


@transaction.atomic
def deployment_rename(*, deployment: Deployment, name: str) -> Deployment:
    """Change the name a deployment is shown by: the only thing about a lease that may change here."""
    name = clean_text("name", name, max_length=NAME_MAX_LENGTH, required=False, single_line=True)
    locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
    locked.name = name
    locked.save(update_fields=["name"])
    return locked


def customer_identity_link(
    *,
    address: str,
    user: User | None = None,
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
    email = _clean_email(email)
    if email:
        defaults["email"] = email
    try:
        with transaction.atomic():
            identity, _ = CustomerIdentity.objects.update_or_create(address=address, defaults=defaults)
    except IntegrityError as error:
        raise Conflict("That user is already linked to another address.", code="identity_taken") from error
    return identity


@transaction.atomic
def customer_identity_update(
    *,
    identity: CustomerIdentity,
    user: User | None,
    email: str,
    envelope_public_key: str,
) -> CustomerIdentity:
    """Set who signs in as an address (`user`; None leaves it a wallet-only identity), where its ticket
    email goes (blank: the user's own address) and the X25519 key envelopes are sealed to it, checked as
    when the identity was linked. The address is the identity and never changes. A change of user is a
    change of who sees the address's tickets: both users' open sockets are re-checked."""
    _require_envelope_key(envelope_public_key)
    email = _clean_email(email)
    locked = CustomerIdentity.objects.select_for_update().get(pk=identity.pk)
    previous_user_id = locked.user_id
    locked.user, locked.email, locked.envelope_public_key = user, email, envelope_public_key
    try:
        with transaction.atomic():
            locked.save(update_fields=["user", "email", "envelope_public_key"])
    except IntegrityError as error:
        raise Conflict("That user is already linked to another address.", code="identity_taken") from error
    if previous_user_id != locked.user_id:
        access_change_announce(user_ids=[pk for pk in (previous_user_id, locked.user_id) if pk is not None])
    return locked


def user_ensure(*, username: str, email: str = "", password: str | None = None) -> User:
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


def support_staff_create(*, username: str, email: str = "", password: str | None = None) -> User:
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

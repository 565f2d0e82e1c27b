"""Email preferences: a recipient's switches, and the signed one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

from typing import TypedDict

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden, NotFound
from core.parties import Party
from notifications.models import EmailPreference
from notifications.services.email_compose import UNSUBSCRIBE_SALT
from providers.models import CustomerIdentity

PREFERENCE_FIELDS = (
    "email_enabled",
    "replies",
    "status_changes",
    "new_tickets",
    "escalations",
    "sla_breaches",
)


class PreferenceOwner(TypedDict, total=False):
    """Whose switches: a portal user's or a customer identity's (one of the two keys)."""

    user_id: int
    customer_id: int


def recipient_of(party: Party) -> PreferenceOwner:
    """The preference owner behind a party: a customer's identity, anyone else's portal user."""
    if party.is_customer:
        identity = CustomerIdentity.objects.filter(address=party.address).values_list("pk", flat=True).first()
        if identity is not None:
            return {"customer_id": identity}
    elif party.user_id is not None:
        return {"user_id": party.user_id}
    raise Forbidden("Only people receive email: this credential has no email preferences.")


def _save(owner: PreferenceOwner, changes: dict[str, bool]) -> EmailPreference:
    preference, _ = EmailPreference.objects.select_for_update().get_or_create(**owner)
    for name, value in changes.items():
        setattr(preference, name, value)
    preference.updated_at = timezone.now()
    preference.save()
    return preference


@transaction.atomic
def email_preference_update(*, actor: Party, **changes: bool) -> EmailPreference:
    """Change the actor's own switches (any of PREFERENCE_FIELDS)."""
    unknown = set(changes) - set(PREFERENCE_FIELDS)
    if unknown:
        raise ValueError(f"not preference fields: {sorted(unknown)}")
    return _save(recipient_of(actor), changes)


def _owner_from_token(token: str) -> PreferenceOwner:
    try:
        key = signing.loads(token, salt=UNSUBSCRIBE_SALT)["r"]
        kind, _, pk = key.partition(":")
        owner: PreferenceOwner = {"user_id": int(pk)} if kind == "user" else {"customer_id": int(pk)}
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise NotFound("This unsubscribe link is not valid.") from error
    if kind not in ("user", "customer"):
        raise NotFound("This unsubscribe link is not valid.")
    return owner


def unsubscribe_check(*, token: str) -> None:
    """NotFound unless `token` is a link we signed."""
    _owner_from_token(token)


@transaction.atomic
def email_unsubscribe(*, token: str) -> EmailPreference:
    """Follow a signed unsubscribe link: no more email to that recipient until they turn it back on."""
    owner = _owner_from_token(token)
    if "user_id" in owner:
        exists = get_user_model().objects.filter(pk=owner["user_id"]).exists()
    else:
        exists = CustomerIdentity.objects.filter(pk=owner["customer_id"]).exists()
    if not exists:
        raise NotFound("This unsubscribe link is not valid.")  # deleted since the email went out
    return _save(owner, {"email_enabled": False})

"""Provider accounts with their members and machine credentials, deployments, and customer identities."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

LEASE_ID_MAX_LENGTH = 200


class ProviderAccount(models.Model):
    """A provider on the VirtEngine marketplace, identified by its chain address."""

    address = models.CharField(max_length=90, unique=True)
    name = models.CharField(max_length=120)
    api_endpoint = models.URLField(blank=True, help_text="Base URL of the provider's VirtEngine API.")
    envelope_public_key = models.CharField(
        max_length=64, blank=True, help_text="Base64 X25519 public key that chain envelopes are sealed to."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProviderMembership", related_name="provider_accounts"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class ProviderMembership(models.Model):
    """A user who works for a provider. A user belongs to at most one provider."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    provider = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="memberships")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_membership"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} @ {self.provider.name}"


class ProviderCredential(models.Model):
    """An HMAC credential for a provider's machines. The secret is stored encrypted, shown once."""

    provider = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="credentials")
    principal = models.CharField(max_length=64, unique=True)
    secret_ciphertext = models.BinaryField()
    label = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    require_strong_signature = models.BooleanField(
        default=False,
        help_text="Refuse VirtEngine's HMAC format: every request must sign a nonce and the body "
        "(X-VE-Nonce, X-VE-Content-SHA256). VE_HMAC_REQUIRE_STRONG requires it of every credential.",
    )

    def __str__(self) -> str:
        return self.principal

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Deployment(models.Model):
    """A lease: `owner/dseq/gseq/oseq`, owned by a customer address and served by one provider."""

    lease_id = models.CharField(max_length=LEASE_ID_MAX_LENGTH, unique=True)
    owner_address = models.CharField(max_length=90, db_index=True)
    dseq = models.PositiveBigIntegerField()
    gseq = models.PositiveIntegerField(default=1)
    oseq = models.PositiveIntegerField(default=1)
    provider = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="deployments")
    name = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["provider", "-created_at"])]

    def __str__(self) -> str:
        return self.lease_id


class CustomerIdentity(models.Model):
    """A customer's chain address, with the portal user signed in as it (if any) and its envelope key.

    Wallet-signed API callers need no portal user: the address alone is the identity.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer", null=True, blank=True
    )
    address = models.CharField(max_length=90, unique=True)
    envelope_public_key = models.CharField(max_length=64, blank=True)
    # Where ticket email goes (the portal user's address when blank); a wallet-only customer has only this.
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "customer identities"

    def __str__(self) -> str:
        return self.address

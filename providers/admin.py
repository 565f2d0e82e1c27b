"""Admin for providers, their members and credentials, deployments and customer identities.

An edit that can change who sees what (a membership, a lease's owner, a credential) also has every open
socket concerned re-checked at once (core.access), rather than at the sockets' next periodic re-check.
"""

from django.contrib import admin, messages
from django.db import models

from core.access import access_change_announce
from providers import services
from providers.models import (
    CustomerIdentity,
    Deployment,
    ProviderAccount,
    ProviderCredential,
    ProviderMembership,
)


class AnnouncesAccessChanges:
    """A ModelAdmin mixin: after any save or delete, the sockets re-check their access."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        access_change_announce(everyone=True)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        access_change_announce(everyone=True)

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        access_change_announce(everyone=True)

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        access_change_announce(everyone=True)


class MembershipInline(admin.TabularInline):
    model = ProviderMembership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(AnnouncesAccessChanges, admin.ModelAdmin):
    list_display = ("name", "address", "api_endpoint", "created_at")
    search_fields = ("name", "address")
    inlines = (MembershipInline,)
    # A provider API without a scheme is an HTTPS one (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    list_display = (
        "principal",
        "provider",
        "label",
        "require_strong_signature",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("provider",)
    search_fields = ("principal", "label")
    # The secret is never shown again after issue; credentials are issued with `manage.py create_provider`.
    exclude = ("secret_ciphertext",)
    # Revocation goes through its service (the action below), which closes the credential's sockets.
    readonly_fields = ("principal", "provider", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke (its requests and open sockets are refused at once)")
    def revoke(self, request, queryset) -> None:
        for credential in queryset:
            services.credential_revoke(credential=credential)
        self.message_user(request, f"{queryset.count()} credential(s) revoked.", messages.SUCCESS)


@admin.register(ProviderMembership)
class ProviderMembershipAdmin(AnnouncesAccessChanges, admin.ModelAdmin):
    list_display = ("user", "provider", "role", "created_at")
    list_filter = ("provider", "role")
    raw_id_fields = ("user",)


@admin.register(Deployment)
class DeploymentAdmin(AnnouncesAccessChanges, admin.ModelAdmin):
    list_display = ("lease_id", "name", "provider", "owner_address", "created_at")
    list_filter = ("provider",)
    search_fields = ("lease_id", "name", "owner_address")


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(AnnouncesAccessChanges, admin.ModelAdmin):
    list_display = ("address", "user", "email", "created_at")
    search_fields = ("address", "user__username", "email")
    raw_id_fields = ("user",)

"""Admin for providers, their members and credentials, deployments and customer identities."""

from django.contrib import admin
from django.db import models

from providers.models import (
    CustomerIdentity,
    Deployment,
    ProviderAccount,
    ProviderCredential,
    ProviderMembership,
)


class MembershipInline(admin.TabularInline):
    model = ProviderMembership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
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
    readonly_fields = ("principal", "provider", "created_at", "last_used_at")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ProviderMembership)
class ProviderMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "provider", "role", "created_at")
    list_filter = ("provider", "role")
    raw_id_fields = ("user",)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("lease_id", "name", "provider", "owner_address", "created_at")
    list_filter = ("provider",)
    search_fields = ("lease_id", "name", "owner_address")


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(admin.ModelAdmin):
    list_display = ("address", "user", "email", "created_at")
    search_fields = ("address", "user__username", "email")
    raw_id_fields = ("user",)

"""Admin for providers, their members and credentials, deployments and customer identities.

Every change made here is a call to a service of providers.services, the one path these changes take
everywhere: an edit is checked as a creation is (a provider's envelope key, an identity's email), and a
change of who sees what (a membership, an identity's user, a revocation) has the open sockets concerned
re-checked at once (the services announce it, core.access). A service's refusal undoes the whole request
and shows on the form again, next to the field it names.

What names a thing on the chain is read-only once it exists: a provider's and an identity's address, and a
deployment's lease ID with the owner and provider it names (a lease's owner decides who sees its tickets,
and another owner is another lease). Nothing that history points at is deleted here: providers,
deployments, identities and credentials stay (a credential is revoked instead); only a membership is
removed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from core.errors import ApplicationError
from providers import services
from providers.models import (
    CustomerIdentity,
    Deployment,
    ProviderAccount,
    ProviderCredential,
    ProviderMembership,
)

# Where the changeform view keeps a service's refusal for the form it shows again.
_REFUSAL = "_providers_service_refusal"


def _show_refusal(form: ModelForm, refusal: ApplicationError, renamed: dict[str, str]) -> None:
    """The refusal on the form: its message on top, each field's messages at the field (or on top, named,
    for a field the form does not show). `renamed` maps the service's names of fields to the form's."""
    form.add_error(None, refusal.message)
    for name, field_messages in refusal.fields.items():
        field = renamed.get(name, name)
        for message in field_messages:
            if field in form.fields:
                form.add_error(field, message)
            else:
                form.add_error(None, f"{field}: {message}")


class ThroughServices:
    """A ModelAdmin mixin: the model is added and changed only through its services.

    `add_fields` are the add form's; `change_fields` the change form's, of which `editable_fields` are
    the ones its service changes (the others are read-only); `service_field_names` maps a field name in the
    service's refusals to the form's where they differ. Subclasses implement `save_through_service`, which
    calls the service and returns the row it wrote. Nothing else is written: no related objects or inline
    rows (inlines here are read-only).
    """

    add_fields: tuple[str, ...] = ()
    change_fields: tuple[str, ...] = ()
    editable_fields: tuple[str, ...] = ()
    service_field_names: dict[str, str] = {}

    def get_fields(self, request, obj=None) -> tuple[str, ...]:
        return self.change_fields if obj is not None else self.add_fields

    def get_readonly_fields(self, request, obj=None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return tuple(field for field in self.change_fields if field not in self.editable_fields)

    def save_through_service(self, request: HttpRequest, obj: Model | None, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def save_model(self, request, obj, form, change) -> None:
        saved = self.save_through_service(request, obj if change else None, form.cleaned_data)
        obj.pk = saved.pk  # the admin's message, log entry and redirect name the row the service wrote

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing is written around the service: the (read-only) inlines are only read, for the admin's
        change message."""
        for formset in formsets:
            formset.save(commit=False)

    def changeform_view(
        self, request: HttpRequest, object_id=None, form_url="", extra_context=None
    ) -> HttpResponse:
        # The admin runs the view in a transaction: a refusal raised by the service undoes all of it. The
        # form is then validated again with the refusal on it, so it shows with the person's input.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as refusal:
            if request.method != "POST" or hasattr(request, _REFUSAL):
                raise
            setattr(request, _REFUSAL, refusal)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs) -> type[ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form
        renamed = self.service_field_names

        class Refused(form):
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                _show_refusal(self, refusal, renamed)
                return cleaned

        return Refused


class Undeletable:
    """Rows that history points at (tickets, events, deliveries): never deleted from the admin."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    """The provider's members, to read: they are added, given a role and removed on the memberships'
    pages, through the services."""

    model = ProviderMembership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProviderAccount)
class ProviderAccountAdmin(ThroughServices, Undeletable, admin.ModelAdmin):
    list_display = ("name", "address", "api_endpoint", "created_at")
    search_fields = ("name", "address")
    inlines = (MembershipInline,)
    # A provider API without a scheme is an HTTPS one (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    add_fields = ("address", "name", "api_endpoint", "envelope_public_key")
    change_fields = (*add_fields, "created_at")
    editable_fields = ("name", "api_endpoint", "envelope_public_key")

    def get_inlines(self, request, obj) -> tuple[type[admin.TabularInline], ...]:
        return self.inlines if obj is not None else ()  # a provider being added has no members yet

    def save_through_service(self, request, obj, data) -> ProviderAccount:
        if obj is None:
            return services.provider_create(
                address=data["address"],
                name=data["name"],
                api_endpoint=data["api_endpoint"],
                envelope_public_key=data["envelope_public_key"],
            )
        return services.provider_update(
            provider=obj,
            name=data["name"],
            api_endpoint=data["api_endpoint"],
            envelope_public_key=data["envelope_public_key"],
        )


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(ThroughServices, Undeletable, admin.ModelAdmin):
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
    # Credentials are issued with `manage.py create_provider` (the secret is shown once, there, and never
    # here); they are revoked with the action below, which closes the credential's sockets.
    change_fields = (
        "principal",
        "provider",
        "label",
        "require_strong_signature",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    editable_fields = ("label", "require_strong_signature")
    actions = ("revoke",)

    def has_add_permission(self, request) -> bool:
        return False

    def save_through_service(self, request, obj, data) -> ProviderCredential:
        return services.credential_update(
            credential=obj, label=data["label"], require_strong_signature=data["require_strong_signature"]
        )

    @admin.action(
        description="Revoke (its requests and open sockets are refused at once)", permissions=["change"]
    )
    def revoke(self, request, queryset: QuerySet[ProviderCredential]) -> None:
        for credential in queryset:
            services.credential_revoke(credential=credential)
        self.message_user(request, f"{queryset.count()} credential(s) revoked.", messages.SUCCESS)


@admin.register(ProviderMembership)
class ProviderMembershipAdmin(ThroughServices, admin.ModelAdmin):
    list_display = ("user", "provider", "role", "created_at")
    list_filter = ("provider", "role")
    raw_id_fields = ("user",)
    # Moving a member to another provider is a removal, then an addition.
    add_fields = ("provider", "user", "role")
    change_fields = (*add_fields, "created_at")
    editable_fields = ("role",)

    def save_through_service(self, request, obj, data) -> ProviderMembership:
        if obj is None:
            return services.provider_member_add(
                provider=data["provider"], user=data["user"], role=data["role"]
            )
        return services.provider_member_role_set(membership=obj, role=data["role"])

    def delete_model(self, request, obj) -> None:
        services.provider_member_remove(membership=obj)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset:
            services.provider_member_remove(membership=membership)


@admin.register(Deployment)
class DeploymentAdmin(ThroughServices, Undeletable, admin.ModelAdmin):
    list_display = ("lease_id", "name", "provider", "owner_address", "created_at")
    list_filter = ("provider",)
    search_fields = ("lease_id", "name", "owner_address")
    # The owner and the sequence numbers are read from the lease ID when it is registered.
    add_fields = ("lease_id", "provider", "name")
    change_fields = ("lease_id", "owner_address", "dseq", "gseq", "oseq", "provider", "name", "created_at")
    editable_fields = ("name",)
    service_field_names = {"deployment_id": "lease_id"}  # the API's name for a lease ID

    def save_through_service(self, request, obj, data) -> Deployment:
        if obj is None:
            return services.deployment_register(
                lease_id=data["lease_id"], provider=data["provider"], name=data["name"]
            )
        return services.deployment_rename(deployment=obj, name=data["name"])


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(ThroughServices, Undeletable, admin.ModelAdmin):
    list_display = ("address", "user", "email", "created_at")
    search_fields = ("address", "user__username", "email")
    raw_id_fields = ("user",)
    add_fields = ("address", "user", "email", "envelope_public_key")
    change_fields = (*add_fields, "created_at")
    editable_fields = ("user", "email", "envelope_public_key")

    def save_through_service(self, request, obj, data) -> CustomerIdentity:
        if obj is None:
            return services.customer_identity_link(
                address=data["address"],
                user=data["user"],
                email=data["email"],
                envelope_public_key=data["envelope_public_key"],
            )
        return services.customer_identity_update(
            identity=obj,
            user=data["user"],
            email=data["email"],
            envelope_public_key=data["envelope_public_key"],
        )

"""The support console's view of webhooks and email: support manages any provider's endpoints (every
change calls a service, as the REST API does), reads the delivery log and redelivers; pending emails and
preferences are visible."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from core.errors import ApplicationError
from notifications import services
from notifications.models import (
    URL_MAX_LENGTH,
    EmailPreference,
    InboundMessage,
    PendingEmail,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.selectors import inbound_message_headers, inbound_messages_for_console
from notifications.services.webhooks import EVENT_TYPES, clean_description, clean_event_types, clean_url
from providers.selectors import party_for_user

MANAGE = "notifications.manage_webhooks"


def _actor(request):
    party = party_for_user(request.user)
    if party is None or not party.is_support or not request.user.has_perm(MANAGE):
        raise PermissionDenied
    return party


def secrets_page(request: HttpRequest, secrets: list[tuple[str, str]]) -> TemplateResponse:
    """New signing secrets, in the body of this one response only: never in a message (the messages
    cookie is signed, not encrypted, and outlives the page), a session or a log; not cached."""
    response = TemplateResponse(
        request,
        "admin/notifications/secrets_shown_once.html",
        {**admin.site.each_context(request), "secrets": secrets},
    )
    response["Cache-Control"] = "no-store"
    return response


class ManagedBySupport:
    """Writes need the support group's `manage_webhooks` permission (Django's add/change/delete are not
    granted to anyone: every write goes through a service)."""

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE)


class ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=URL_MAX_LENGTH, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(kind, kind) for kind in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("provider", "url", "event_types", "description")

    def _clean_with(self, cleaner, name: str):
        try:
            return cleaner(self.cleaned_data.get(name))
        except ApplicationError as error:
            raise forms.ValidationError(error.fields.get(name) or error.message) from error

    def clean_url(self):
        return self._clean_with(clean_url, "url")

    def clean_event_types(self):
        return self._clean_with(clean_event_types, "event_types")

    def clean_description(self):
        return self._clean_with(clean_description, "description")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "outcome", "status_code", "latency_ms", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ManagedBySupport, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "url",
        "provider",
        "state",
        "consecutive_failures",
        "last_success_at",
        "disabled_reason",
        "delivery_log",
    )
    list_filter = ("state", "provider")
    search_fields = ("url", "description", "provider__name")
    actions = ("rotate_secret", "enable", "disable")
    readonly_fields = (
        "state",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "failing_since",
        "last_success_at",
        "created_by_label",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_manage_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_manage_permission(request)

    def get_readonly_fields(self, request, obj=None):
        # The provider of an endpoint is fixed once it exists.
        return (*self.readonly_fields, "provider") if obj is not None else self.readonly_fields

    @admin.display(description="Delivery log")
    def delivery_log(self, obj: WebhookEndpoint) -> str:
        return format_html('<a href="../webhookdelivery/?endpoint__id__exact={}">deliveries</a>', obj.pk)

    def save_model(self, request, obj, form, change) -> None:
        actor = _actor(request)
        data = form.cleaned_data
        if change:
            services.webhook_endpoint_update(
                actor=actor,
                endpoint_id=obj.pk,
                url=data["url"],
                event_types=data["event_types"],
                description=data["description"],
            )
            return
        created = services.webhook_endpoint_create(
            actor=actor,
            provider=data["provider"],
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
        )
        obj.pk = created.endpoint.pk
        request.secrets_shown_once = [(created.endpoint.url, created.secret)]

    def response_add(self, request, obj, post_url_continue=None):
        shown = getattr(request, "secrets_shown_once", None)
        if shown:
            return secrets_page(request, shown)
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request, obj) -> None:
        services.webhook_endpoint_delete(actor=_actor(request), endpoint_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for endpoint in queryset:
            self.delete_model(request, endpoint)

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["manage"])
    def rotate_secret(self, request, queryset) -> TemplateResponse:
        actor = _actor(request)
        shown = []
        for endpoint in queryset:
            rotated = services.webhook_endpoint_rotate_secret(actor=actor, endpoint_id=endpoint.pk)
            shown.append((endpoint.url, rotated.secret))
        return secrets_page(request, shown)

    @admin.action(description="Enable (held deliveries go out in order)", permissions=["manage"])
    def enable(self, request, queryset) -> None:
        actor = _actor(request)
        for endpoint in queryset:
            services.webhook_endpoint_update(actor=actor, endpoint_id=endpoint.pk, enabled=True)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable", permissions=["manage"])
    def disable(self, request, queryset) -> None:
        actor = _actor(request)
        for endpoint in queryset:
            services.webhook_endpoint_update(actor=actor, endpoint_id=endpoint.pk, enabled=False)
        self.message_user(request, f"{queryset.count()} endpoint(s) disabled.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ManagedBySupport, ReadOnly, admin.ModelAdmin):
    """The delivery log (read-only). Filter by endpoint and date, then redeliver the selection."""

    list_display = (
        "public_id",
        "endpoint",
        "event_type",
        "ticket",
        "seq",
        "state",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "created_at",
    )
    list_filter = ("state", "event_type", "endpoint__provider", "endpoint")
    date_hierarchy = "created_at"
    search_fields = ("public_id",)
    raw_id_fields = ("endpoint", "event", "ticket")
    exclude = ("body",)
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver",)

    @admin.action(
        description="Redeliver the selected deliveries (same id, same body)", permissions=["manage"]
    )
    def redeliver(self, request, queryset) -> None:
        actor = _actor(request)
        count = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.webhook_delivery_redeliver(
                    actor=actor, endpoint_id=delivery.endpoint_id, delivery_id=delivery.public_id
                )
            except ApplicationError as error:
                messages.error(request, f"{delivery.public_id}: {error.message}")
                continue
            count += 1
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)


@admin.register(PendingEmail)
class PendingEmailAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "ticket",
        "recipient_key",
        "role",
        "state",
        "first_seq",
        "last_seq",
        "due_at",
        "sent_at",
        "attempts",
        "last_error",
    )
    list_filter = ("state", "role")
    raw_id_fields = ("ticket", "user", "customer")


@admin.register(EmailPreference)
class EmailPreferenceAdmin(ReadOnly, admin.ModelAdmin):
    """Each person's own switches (the preferences API, the unsubscribe link); the console only reads."""

    list_display = (
        "user",
        "customer",
        "email_enabled",
        "replies",
        "status_changes",
        "new_tickets",
        "escalations",
    )
    raw_id_fields = ("user", "customer")


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnly, admin.ModelAdmin):
    """Replies by email as they arrived: posted, dropped (automatic mail), rejected (with what the sender
    was told) or unreadable. Read-only: the raw message stays as received."""

    list_display = ("received_at", "state", "reason", "from_address", "subject", "ticket", "dkim", "attempts")
    list_display_links = ("received_at", "from_address")
    list_filter = ("state", "reason", "dkim")
    search_fields = ("from_address", "subject", "message_id", "envelope_from")
    fields = (
        "received_at",
        "processed_at",
        "state",
        "reason",
        "detail",
        "dkim",
        "ticket",
        "comment",
        "from_address",
        "envelope_from",
        "recipient",
        "subject",
        "message_id",
        "size",
        "attempts",
        "bounced_at",
        "headers",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return inbound_messages_for_console()

    @admin.display(description="Headers")
    def headers(self, obj: InboundMessage) -> str:
        return format_html('<pre tabindex="0">{}</pre>', inbound_message_headers(obj))

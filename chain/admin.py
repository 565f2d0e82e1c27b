"""Admin for the chain outbox (read-only: rows are written by services and drained by a task)."""

from django.contrib import admin, messages

from chain.models import OutboxEntry
from chain.services import outbox_retry_now


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = (
        "idempotency_key",
        "seq",
        "state",
        "attempts",
        "next_attempt_at",
        "backend",
        "height",
        "anchored_at",
        "last_error",
    )
    list_filter = ("state", "backend")
    search_fields = ("idempotency_key", "tx_hash")
    raw_id_fields = ("event", "ticket")
    actions = ("retry_now",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Retry the selected unanchored events now")
    def retry_now(self, request, queryset) -> None:
        count = outbox_retry_now(entry_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) will be retried now.", messages.SUCCESS)

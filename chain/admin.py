"""Admin for the chain outbox (read-only: rows are written by services and drained by a task)."""

from django.contrib import admin

from chain.models import OutboxEntry


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = (
        "idempotency_key",
        "state",
        "attempts",
        "next_attempt_at",
        "backend",
        "height",
        "anchored_at",
    )
    list_filter = ("state", "backend")
    search_fields = ("idempotency_key", "tx_hash")
    raw_id_fields = ("event", "ticket")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

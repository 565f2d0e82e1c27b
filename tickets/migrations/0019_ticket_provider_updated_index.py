# A provider's tickets in the order of their last change: the walk a provider's search takes for a common
# word (`-updated_at`, and the most recent matches that best match first ranks). Without it, the walk read
# every party's tickets in `ticket_updated_idx` and dropped nine in ten (a provider with a tenth of them).
# Written as SQL, built without blocking writes: the model's own indexes are declared in `tickets.models`.

from django.db import migrations

INDEX = "ticket_provider_updated_idx"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("tickets", "0018_privacy_encryption_erasure"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            "ON tickets_ticket (provider_id, updated_at DESC, id DESC)",
            f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
        ),
    ]

# A provider's tickets in the order of their last change: the walk a provider's search takes for a common
# word (`-updated_at`, and the most recent matches that best match first ranks). Without it, the walk read
# every party's tickets in `ticket_updated_idx` and dropped nine in ten (a provider with a tenth of them).
# Built without blocking writes (CREATE INDEX CONCURRENTLY, outside a transaction).

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0018_privacy_encryption_erasure"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="ticket",
            index=models.Index(fields=["provider", "-updated_at", "-id"], name="ticket_provider_updated_idx"),
        ),
    ]

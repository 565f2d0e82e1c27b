"""The customer index keys on the address alone (deduplicated by PostgreSQL): a customer's scope reads it as a
bitmap, never in order."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0012_customer_scope_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="ticket",
            name="ticket_customer_idx",
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["customer_address"], name="ticket_customer_address_idx"),
        ),
    ]

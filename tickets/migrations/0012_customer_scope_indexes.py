"""A customer's scope (their leases' tickets, or those they opened on another's lease) reads two indexes
together; the index of `public_updated_at` across every ticket, which only customers order by, goes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0011_sweep_write_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="ticket",
            name="ticket_public_updated_idx",
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("created_by_address__gt", ""),
                    models.Q(("created_by_address", models.F("customer_address")), _negated=True),
                ),
                fields=["created_by_address"],
                name="ticket_created_by_address_idx",
            ),
        ),
    ]

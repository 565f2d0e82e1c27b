"""Ticket keys copied from the event lose their own constraint and index; the endpoint key its index
(the unique (endpoint, event) index starts with it)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_pending_email_claim_token"),
        ("tickets", "0012_customer_scope_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="pendingemail",
            name="ticket",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="tickets.ticket",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="endpoint",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="notifications.webhookendpoint",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="ticket",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="tickets.ticket",
            ),
        ),
    ]

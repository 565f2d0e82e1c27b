"""Pending emails: the thread index holds sent rows only, and the user and customer keys are indexed where
set, so queueing a digest writes four indexes instead of six."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_derived_ticket_keys"),
        ("providers", "0003_credential_require_strong_signature"),
        ("tickets", "0012_customer_scope_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="pendingemail",
            name="pending_email_thread_idx",
        ),
        migrations.AlterField(
            model_name="pendingemail",
            name="customer",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="providers.customeridentity",
            ),
        ),
        migrations.AlterField(
            model_name="pendingemail",
            name="user",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="pendingemail",
            index=models.Index(
                condition=models.Q(("state", "sent")),
                fields=["ticket", "recipient_key"],
                name="pending_email_sent_thread_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="pendingemail",
            index=models.Index(
                condition=models.Q(("user__isnull", False)), fields=["user"], name="pending_email_user_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="pendingemail",
            index=models.Index(
                condition=models.Q(("customer__isnull", False)),
                fields=["customer"],
                name="pending_email_customer_idx",
            ),
        ),
    ]

"""Indexes leave out the rows with nothing to find: internal events (no public number) and assignments
between queues (no user)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0013_customer_address_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="ticketevent",
            name="unique_ticket_event_public_seq",
        ),
        migrations.AlterField(
            model_name="assignment",
            name="from_user",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="assignment",
            name="to_user",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                condition=models.Q(("from_user__isnull", False)),
                fields=["from_user"],
                name="assignment_from_user_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                condition=models.Q(("to_user__isnull", False)),
                fields=["to_user"],
                name="assignment_to_user_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="ticketevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("public_seq__isnull", False)),
                fields=("ticket", "public_seq"),
                name="unique_ticket_event_public_seq",
            ),
        ),
    ]

"""The outbox is unique per (ticket, seq), which makes the idempotency key (derived from them) unique too:
its own unique index and the partial (ticket, seq) index of unanchored rows go."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chain", "0005_sweep_write_indexes"),
        ("tickets", "0014_null_free_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="outboxentry",
            name="outbox_ticket_seq_idx",
        ),
        migrations.RemoveIndex(
            model_name="outboxentry",
            name="outbox_unanchored_ticket_idx",
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="idempotency_key",
            field=models.CharField(max_length=100),
        ),
        migrations.AddConstraint(
            model_name="outboxentry",
            constraint=models.UniqueConstraint(fields=("ticket", "seq"), name="unique_outbox_ticket_seq"),
        ),
    ]

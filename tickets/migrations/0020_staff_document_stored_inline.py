# The staff document kept in the search table's own rows (compressed) rather than in its TOAST table:
# support's and providers' searches check it ticket by ticket as they walk tickets in order, and fetching it
# from TOAST (its index, then its chunks) was half of each check. The public document stays in TOAST, so a
# row holds about one document and the table's size is unchanged. A document too large for a row still goes
# to TOAST. Only the setting changes here (no rewrite, a brief lock): documents move as they are next
# written, or all at once with `manage.py search_reindex`.

from django.db import migrations

TABLE = "tickets_ticketsearch"


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0019_ticket_provider_updated_index"),
    ]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} ALTER COLUMN staff_doc SET STORAGE MAIN",
            reverse_sql=f"ALTER TABLE {TABLE} ALTER COLUMN staff_doc SET STORAGE EXTENDED",
        ),
    ]

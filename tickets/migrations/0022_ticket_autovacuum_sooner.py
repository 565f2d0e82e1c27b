# Autovacuum comes to the ticket table after 0.5 % of its rows changed (5,000 at 1M tickets), not
# PostgreSQL's 20 % (200,000). A search that walks tickets newest first (`ticket_updated_idx`, an index-only
# scan) must fetch the row of every ticket on a page changed since the last vacuum, and those are exactly
# the newest tickets it walks first. At 1M tickets, after 10,000 changes through the services, the walks
# took: "container restart" 31-35 ms with 8,828 such fetches, 29-30 ms after a VACUUM; "connection timeout"
# 18-20 / 13-16 ms; two commonish words by best match 136-138 / 84-91 ms (docs/bench-figures.md). A vacuum of
# the table after those changes took about a second. Changing a table's storage parameters takes a lock that
# blocks neither reads nor writes.

from django.db import migrations

PARAMETERS = ("autovacuum_vacuum_scale_factor", "autovacuum_vacuum_insert_scale_factor")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0021_public_document_unindexed"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE tickets_ticket SET ("
            + ", ".join(f"{parameter} = 0.005" for parameter in PARAMETERS)
            + ")",
            reverse_sql=f"ALTER TABLE tickets_ticket RESET ({', '.join(PARAMETERS)})",
        ),
    ]

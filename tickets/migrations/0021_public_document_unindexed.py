# The public document loses its GIN index: no query reads it. A customer's search reads their own tickets
# first and checks each one's public document (`tickets.selectors.search`); providers and support search
# the staff document's index. Yet every write of a ticket's documents inserted all of the public document's
# words into this index too (a search row's update is never HOT: its documents change). At 1M tickets it held
# 646-752 MB, and the search writer's cost on `ticket_create` was +2.33 ms with it, +1.17 and +2.00 ms without.
# Dropped without blocking writes (DROP INDEX CONCURRENTLY, outside a transaction); undoing it builds it
# again the same way.

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0020_staff_document_stored_inline"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="ticketsearch", name="ticket_search_public_idx"),
    ]

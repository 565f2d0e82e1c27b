# The public document loses its GIN index: no query reads it. A customer's search reads their own tickets
# first and checks each one's public document (`tickets.selectors.search`); providers and support search
# the staff document's index. Yet every write of a ticket's documents inserted all of the public document's
# words into this index too (a search row's update is never HOT: its documents change), about a third of
# what the search writer added to `ticket_create`, and it held 646 MB at 1M tickets.
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

"""The search index: one row per ticket with what each audience may find it by.

Two documents per ticket, because a search must never match text its reader may not read:
- `public_doc`: what a customer may read (subject, number, description, public comments and file names,
  the deployments' lease IDs and names);
- `staff_doc`: all of that plus internal notes and internal file names, and the people on the ticket (the
  customer's address, name and email, the provider's name and address), for providers and support.

The rows are written by `tickets.services.search_index` in the transaction that records the change, and
rebuilt by `manage.py search_reindex`. They live apart from the ticket row: a ticket row is rewritten by
every status change and SLA sweep, and each rewrite would otherwise re-insert every word into the GIN
index.

Only the staff document has a GIN index, which providers' and support's searches read. A customer's search
reads their own few tickets first and checks each one's public document: an index of the public documents
was read by no query, and every write paid for it.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone

# The text search configurations the migration creates: English stems without accents (`SEARCH_CONFIG`),
# and whole words without accents or English stop words (`PREFIX_CONFIG`), which the documents also hold
# so that a word typed halfway ("deployme") still finds its whole form ("deployment"): its stem ("deploy")
# is not a prefix of what was typed.
SEARCH_CONFIG = "ve_search"
PREFIX_CONFIG = "ve_search_words"
# The GIN index of the staff documents (`tickets.services.search_index.search_pending_merge` names it).
STAFF_INDEX = "ticket_search_staff_idx"


def searchable_text_sql(text_sql: str) -> str:
    """A text as the index reads it: PostgreSQL's parser takes anything between `<` and `>` for an HTML
    tag and skips it, and people write `<checkout>` or paste `<none>` from a terminal: those are words."""
    return f"translate({text_sql}, '<>', '  ')"


class TicketSearch(models.Model):
    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, primary_key=True, related_name="search"
    )
    public_doc = SearchVectorField()
    staff_doc = SearchVectorField()
    indexed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            GinIndex(fields=["staff_doc"], name=STAFF_INDEX),
        ]

    def __str__(self) -> str:
        return f"search document of {self.ticket_id}"


class SearchIndexState(models.Model):
    """What every document of the index is known to hold (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # Every staff document holds its adjacent words' pairs (`ve_search_pairs`): set by the migration that
    # added them where there were no documents yet, else by the first whole rebuild after it.
    phrase_pairs = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"search index (phrase pairs: {'all' if self.phrase_pairs else 'not all'})"

# Adjacent words as lexemes of their own, so that a phrase is found through the index instead of by checking
# every document that holds its words. A rare phrase of two commoner words ("sabebe vabebe": 80 documents,
# but 11,388 that hold both words) was read at 1M tickets by checking the positions of all 11,388 (35-65 ms);
# with the pairs the index answers about 100 candidates. See `tickets.services.search_index` (the writer) and
# `tickets.selectors.search.phrase_pairs` (the reader).
#
# A pair is stored as a bucket of its words' hash, a space and five hex digits (1,048,576 buckets): the pairs'
# own text made the index five times its size (4 GB at 1M tickets), a bucket is shared by a few hundred
# documents and the phrase itself is still checked on each one. A lexeme that begins with a space is never
# one a query's words become. `hashtextextended` is the hash that partitioning stores rows by: stable across
# PostgreSQL versions.
#
# Documents written before this migration have no pairs: searches rely on them only once every document has
# been rewritten (`SearchIndexState.phrase_pairs`, set by `manage.py search_reindex`), or at once where there
# were no documents yet.

from django.db import migrations, models

FUNCTIONS = """
CREATE FUNCTION ve_search_pair(first text, second text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT ' ' || to_hex(hashtextextended(first || ' ' || second, 0) & 1048575)
$$;

-- PL/pgSQL keeps the query's plan for the session (a SQL function's is made again at each statement), and
-- array_to_tsvector drops duplicates itself: 0.16 ms for a new ticket's document, 0.56 ms otherwise.
CREATE FUNCTION ve_search_pairs(doc tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
BEGIN
    RETURN coalesce((
        SELECT array_to_tsvector(array_agg(ve_search_pair(a.lexeme, b.lexeme)))
        FROM (SELECT u.lexeme, p FROM unnest(doc) u, unnest(u.positions) p) a
        JOIN (SELECT u.lexeme, p FROM unnest(doc) u, unnest(u.positions) p) b ON b.p = a.p + 1
    ), ''::tsvector);
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION ve_search_pairs(tsvector);
DROP FUNCTION ve_search_pair(text, text);
"""


def record_state(apps, schema_editor) -> None:
    state = apps.get_model("tickets", "SearchIndexState")
    documents = apps.get_model("tickets", "TicketSearch")
    state.objects.create(pk=1, phrase_pairs=not documents.objects.exists())


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0022_ticket_autovacuum_sooner"),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.CreateModel(
            name="SearchIndexState",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("phrase_pairs", models.BooleanField(default=False)),
            ],
        ),
        migrations.RunPython(record_state, migrations.RunPython.noop),
    ]

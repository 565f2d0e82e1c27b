"""Writing the search index (`tickets.models.search`): in the transaction that records a change, and in
batches when rebuilding it.

A ticket's documents are computed in one statement from what it holds now (so writing them twice writes
the same thing, and a rebuild can never disagree with the live path). The index writer is an event writer
(`tickets.hooks`): every recorded event that can change what a ticket is found by rewrites its documents,
inside the transaction that records it, under the ticket's row lock. A comment is therefore searchable
the moment its socket frame is sent, and a rolled-back change leaves the index as it was.

What a document holds, by weight (relevance ranks A highest):
- A: the subject and the ticket number (`000123`; every form people type is read as this);
- B: the description, the deployments' lease IDs and names, the file names;
- C: the comments, newest first;
- D (staff document only): the customer's address, name and emails, the provider's name and address.
The staff document also holds a lexeme for each pair of adjacent words (`ve_search_pairs`, migration
`0023`): a phrase's pairs are what the index reads for it (`tickets.selectors.search.phrase_pairs`).
Each text is also indexed as whole words (`PREFIX_CONFIG`) for search-as-you-type. A document is bounded
(`COMMENT_TEXT_LIMIT` per comment, `CONVERSATION_TEXT_LIMIT` for all of them, newest first): PostgreSQL
refuses a `tsvector` over 1 MB, and a ticket's search must never make its write fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from core.prepared import prepared_statements
from providers.models import CustomerIdentity, Deployment, ProviderAccount
from tickets.hooks import EventWriter, RecordedEvents
from tickets.models import (
    Attachment,
    Comment,
    DeploymentLink,
    SearchIndexState,
    Ticket,
    TicketEvent,
    TicketSearch,
)
from tickets.models.search import PREFIX_CONFIG, SEARCH_CONFIG, STAFF_INDEX, searchable_text_sql
from tickets.selectors.search import phrase_pairs_ready

logger = logging.getLogger(__name__)

COMMENT_TEXT_LIMIT = 20_000
CONVERSATION_TEXT_LIMIT = 200_000
DESCRIPTION_TEXT_LIMIT = 50_000

# Events that cannot change what a ticket is found by; every other kind (new ones included) rewrites the
# ticket's documents.
KINDS_THAT_CHANGE_NO_TEXT = frozenset(
    {
        TicketEvent.Kind.STATUS_CHANGE,
        TicketEvent.Kind.PRIORITY_CHANGE,
        TicketEvent.Kind.ASSIGNMENT_CHANGE,
        TicketEvent.Kind.SLA_WARNING,
        TicketEvent.Kind.SLA_BREACHED,
        TicketEvent.Kind.SATISFACTION_RATED,  # a rating's comment is not searched
    }
)


def _vector(text_sql: str, weight: str, *, whole_words: bool = True) -> str:
    """The stems of a text, with one weight; and its whole words (`whole_words`), for a half-typed word to
    find its whole form. Comments, most of the text, go without them: they would double the documents'
    size (every search reads documents) and the cost of each write, and a half-typed word still finds a
    comment's words through their stems ("deplo" → "deploy")."""
    text_sql = searchable_text_sql(text_sql)
    stems = f"to_tsvector('{SEARCH_CONFIG}', {text_sql})"
    if whole_words:
        stems = f"{stems} || to_tsvector('{PREFIX_CONFIG}', {text_sql})"
    return f"setweight({stems}, '{weight}')"


def _lease_parts(lease_sql: str) -> str:
    """A lease ID's owner and `dseq` as words of their own (`owner/dseq/gseq/oseq` is one token to
    PostgreSQL); not `gseq` and `oseq`, almost always 1, which would make every ticket match "1"."""
    return f"split_part({lease_sql}, '/', 1), split_part({lease_sql}, '/', 2)"


def _documents_sql(tickets_where: str) -> str:
    """An upsert of the documents of the tickets that `tickets_where` (a condition on `tk`) selects."""
    t = {
        model: model._meta.db_table
        for model in (
            Ticket,
            Comment,
            Attachment,
            DeploymentLink,
            Deployment,
            ProviderAccount,
            CustomerIdentity,
            TicketSearch,
        )
    }
    user_table = get_user_model()._meta.db_table
    # A file name whole ("node-panic.log" is one token to PostgreSQL: a host name) and in its words.
    name = "a.filename || ' ' || regexp_replace(a.filename, '[^[:alnum:]]+', ' ', 'g')"
    head = _vector("tk.subject || ' ' || lpad(tk.number::text, 6, '0')", "A")
    public_b = _vector(
        f"concat_ws(' ', left(tk.description, {DESCRIPTION_TEXT_LIMIT}), dep.lease_id, "
        f"{_lease_parts('dep.lease_id')}, dep.name, "
        "files.public_names, links.leases)",
        "B",
    )
    internal_b = _vector("coalesce(files.internal_names, '')", "B")
    public_c = _vector("coalesce(conversation.public_text, '')", "C", whole_words=False)
    internal_c = _vector("coalesce(conversation.internal_text, '')", "C", whole_words=False)
    people = _vector(
        "concat_ws(' ', tk.customer_address, ident.email, person.username, person.first_name, "
        "person.last_name, person.email, prov.name, prov.address)",
        "D",
    )
    # Names from the models and constants of this module; the ids are a parameter.
    return f"""
    INSERT INTO {t[TicketSearch]} (ticket_id, public_doc, staff_doc, indexed_at)
    SELECT tk.id, v.head || v.public_b || v.public_c, staff.doc || ve_search_pairs(staff.doc), now()
    FROM {t[Ticket]} tk
    JOIN {t[Deployment]} dep ON dep.id = tk.deployment_id
    JOIN {t[ProviderAccount]} prov ON prov.id = tk.provider_id
    LEFT JOIN {t[CustomerIdentity]} ident ON ident.address = tk.customer_address
    LEFT JOIN {user_table} person ON person.id = ident.user_id
    CROSS JOIN LATERAL (
        SELECT left(string_agg(left(c.body, {COMMENT_TEXT_LIMIT}), E'\\n' ORDER BY c.created_at DESC)
                    FILTER (WHERE NOT c.is_internal), {CONVERSATION_TEXT_LIMIT}) AS public_text,
               left(string_agg(left(c.body, {COMMENT_TEXT_LIMIT}), E'\\n' ORDER BY c.created_at DESC)
                    FILTER (WHERE c.is_internal), {CONVERSATION_TEXT_LIMIT}) AS internal_text
        FROM {t[Comment]} c WHERE c.ticket_id = tk.id
    ) conversation
    CROSS JOIN LATERAL (
        SELECT string_agg({name}, ' ') FILTER (WHERE NOT a.is_internal) AS public_names,
               string_agg({name}, ' ') FILTER (WHERE a.is_internal) AS internal_names
        FROM {t[Attachment]} a WHERE a.ticket_id = tk.id
    ) files
    CROSS JOIN LATERAL (
        SELECT string_agg(concat_ws(' ', linked.lease_id, {_lease_parts("linked.lease_id")}, linked.name), ' ')
               AS leases
        FROM {t[DeploymentLink]} link JOIN {t[Deployment]} linked ON linked.id = link.deployment_id
        WHERE link.ticket_id = tk.id
    ) links
    CROSS JOIN LATERAL (
        SELECT {head} AS head, {public_b} AS public_b, {internal_b} AS internal_b,
               {public_c} AS public_c, {internal_c} AS internal_c, {people} AS people
        OFFSET 0
    ) v
    CROSS JOIN LATERAL (
        SELECT v.head || v.public_b || v.internal_b || v.public_c || v.internal_c || v.people AS doc OFFSET 0
    ) staff
    WHERE {tickets_where}
    ON CONFLICT (ticket_id) DO UPDATE
        SET public_doc = EXCLUDED.public_doc, staff_doc = EXCLUDED.staff_doc, indexed_at = EXCLUDED.indexed_at
    """  # noqa: S608


# The statement for one ticket (`%(ticket_id)s`: every write to one ticket) and for several (`%(ticket_ids)s`).
_DOCUMENTS_SQL: dict[bool, str] = {}


def search_documents_write(ticket_ids: Iterable[Any]) -> int:
    """(Re)write the search documents of these tickets from what they hold now; how many were written."""
    ids = list(dict.fromkeys(str(ticket_id) for ticket_id in ticket_ids))
    if not ids:
        return 0
    one = len(ids) == 1
    if one not in _DOCUMENTS_SQL:  # built on first use: the models must be loaded
        _DOCUMENTS_SQL[one] = _documents_sql(
            "tk.id = %(ticket_id)s::uuid" if one else "tk.id = ANY(%(ticket_ids)s)"
        )
    # One ticket's (the write of every change) as a prepared statement: parsing and planning its seven joins
    # took three times as long as running it (2.7 of 3.5 ms for a new ticket). `id = $1` rather than
    # `= ANY($1)`, whose generic plan PostgreSQL estimates for ten ids and so never chooses.
    with prepared_statements(enabled=one), connection.cursor() as cursor:
        cursor.execute(_DOCUMENTS_SQL[one], {"ticket_id": ids[0]} if one else {"ticket_ids": ids})
        return int(cursor.rowcount)


def search_pending_merge() -> int:
    """Merge the staff index's pending entries into the index proper; how many pages of them there were.

    A GIN index takes new entries into a pending list (a write adds its words there cheaply) and merges the
    list once it passes `gin_pending_list_limit` (4 MB), inside whichever write crosses it: at 1M tickets,
    with the phrase pairs, that write took 1.7 s instead of 12 ms, once in about 440 writes (a comment on a
    ticket of five re-enters its document's 560 words and pairs). Until then every search reads the whole
    list too. Autovacuum, which also merges it, comes to a table of a million rows only after 200,000
    changes. Beat runs this every 10 s, which keeps the list under the limit up to about 40 writes a second:
    the merge is then the worker's (1.3–1.6 s for 400 such writes), never a request's.
    It needs the index's owner (the role that ran the migrations), as VACUUM does.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [STAFF_INDEX])
        (pages,) = cursor.fetchone()
    return int(pages)


def _write_for_events(events: RecordedEvents) -> None:
    """A ticket whose only text change is one new comment gets that comment appended to its documents
    (the common write: parsing one text, not the whole ticket); any other change rewrites them whole."""
    changed: dict[Any, list[TicketEvent]] = {}
    for event, ticket in events:
        if event.kind not in KINDS_THAT_CHANGE_NO_TEXT:
            changed.setdefault(ticket.pk, []).append(event)
    one_comment = {
        ticket_id: str(found[0].data["comment_id"])
        for ticket_id, found in changed.items()
        if len(found) == 1
        and found[0].kind == TicketEvent.Kind.NEW_COMMENT
        and found[0].data.get("comment_id")
    }
    appended = _comments_append(list(one_comment.values()))
    search_documents_write(ticket_id for ticket_id in changed if one_comment.get(ticket_id) not in appended)


# A document larger than this (as stored) is rewritten whole, within its bounds, rather than appended to:
# PostgreSQL refuses a tsvector over 1 MB, and a stored one is compressed.
APPEND_MAX_STORED_BYTES = 250_000
# An English stop word (`SEARCH_CONFIG` drops it): what separates an appended comment from the document.
APPEND_GAP = "the"


def _comments_append(comment_ids: list[str]) -> set[str]:
    """Append each comment's stems to its ticket's documents (the public one only for a public comment);
    the ids of those appended (not: a ticket without documents yet, or with documents too large)."""
    if not comment_ids:
        return set()
    search, comments = TicketSearch._meta.db_table, Comment._meta.db_table
    # A stop word first: it takes a position and leaves no word, so the comment's first word does not follow
    # the document's last one. No phrase then runs across the two, and the comment's own pairs of adjacent
    # words are all the document gains (finding the document's last words would read all of it).
    body = searchable_text_sql(f"'{APPEND_GAP} ' || left(c.body, {COMMENT_TEXT_LIMIT})")
    one = len(comment_ids) == 1  # the common write, prepared (as `search_documents_write`'s)
    with prepared_statements(enabled=one), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {search} s
            SET public_doc = CASE WHEN c.is_internal THEN s.public_doc ELSE s.public_doc || v.stems END,
                staff_doc = s.staff_doc || v.stems || ve_search_pairs(v.stems),
                indexed_at = now()
            FROM {comments} c
            CROSS JOIN LATERAL (SELECT setweight(to_tsvector('{SEARCH_CONFIG}', {body}), 'C') AS stems) v
            WHERE c.id {"= %(ids)s::uuid" if one else "= ANY(%(ids)s::uuid[])"} AND s.ticket_id = c.ticket_id
              AND pg_column_size(s.staff_doc) < {APPEND_MAX_STORED_BYTES}
            RETURNING c.id
            """,  # noqa: S608 — names from the models and this module
            {"ids": comment_ids[0] if one else comment_ids},
        )
        return {str(row[0]) for row in cursor.fetchall()}


SEARCH_INDEX_WRITER = EventWriter(name="search", write=_write_for_events)


# ---------------------------------------------------------------------------------------------------------
# What the people on a ticket are called lives outside it: a change of name, email or deployment name
# rewrites the documents of their tickets, in the transaction that saves it (`tickets.apps` connects these
# to the models' saves).

PEOPLE_FIELDS = frozenset({"username", "first_name", "last_name", "email"})


def _saved_fields_matter(update_fields: Iterable[str] | None, fields: frozenset[str]) -> bool:
    return update_fields is None or bool(fields & set(update_fields))


def reindex_after_user_save(instance: Any, update_fields: Iterable[str] | None = None, **_: Any) -> None:
    # A sign-in saves `last_login` alone: nothing search holds.
    if _saved_fields_matter(update_fields, PEOPLE_FIELDS):
        addresses = CustomerIdentity.objects.filter(user_id=instance.pk).values("address")
        search_documents_write_where(customer_address__in=addresses)


def reindex_after_identity_save(instance: CustomerIdentity, **_: Any) -> None:
    search_documents_write_where(customer_address=instance.address)


def reindex_after_provider_save(
    instance: ProviderAccount, update_fields: Iterable[str] | None = None, **_: Any
) -> None:
    if _saved_fields_matter(update_fields, frozenset({"name", "address"})):
        search_documents_write_where(provider_id=instance.pk)


def reindex_after_deployment_save(
    instance: Deployment, created: bool = False, update_fields: Iterable[str] | None = None, **_: Any
) -> None:
    if not created and _saved_fields_matter(update_fields, frozenset({"name", "lease_id"})):
        linked = DeploymentLink.objects.filter(deployment_id=instance.pk).values("ticket_id")
        search_documents_write_where(deployment_id=instance.pk)
        search_documents_write_where(pk__in=linked)


REBUILD_BATCH_SIZE = 500


def search_documents_write_where(**ticket_filter: Any) -> int:
    """Rewrite the documents of the tickets matching `ticket_filter`, in batches, under each batch's row
    locks (so a concurrent change of one of them waits, then writes after it)."""
    written = 0
    for batch in _id_batches(Ticket.objects.filter(**ticket_filter), REBUILD_BATCH_SIZE):
        written += _write_locked(batch)
    return written


def _id_batches(tickets: Any, size: int) -> Iterable[list[Any]]:
    last = None
    while True:
        page = tickets.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        ids = list(page.values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _write_locked(ticket_ids: Sequence[Any]) -> int:
    """Documents written under a share lock of their tickets: a writer that changes a ticket holds its row
    lock until it commits, so documents computed after taking the lock cannot miss its change, and a
    change that comes later rewrites them after this."""
    with transaction.atomic():
        locked = list(
            Ticket.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk__in=ticket_ids)
            .values_list("pk", flat=True)
        )
        return search_documents_write(locked)


@dataclass(frozen=True)
class RebuildProgress:
    done: int
    total: int


def search_index_rebuild(
    *,
    only_missing: bool = False,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: Callable[[RebuildProgress], None] | None = None,
) -> int:
    """Rewrite every ticket's documents (or only those of tickets that have none), one short transaction
    per batch of `batch_size` tickets, so writes go on meanwhile; `progress` is told after each batch.
    Documents written before the phrase pairs all lack them: while some may, `only_missing` rewrites all."""
    if only_missing and not phrase_pairs_ready():
        only_missing = False
    tickets = Ticket.objects.all()
    if only_missing:
        tickets = tickets.filter(search__isnull=True)
    total = tickets.count()
    done = 0
    for batch in _id_batches(tickets, batch_size):
        done += _write_locked(batch)
        if progress is not None:
            progress(RebuildProgress(done=done, total=total))
    if not only_missing:
        # Every document has now been written by this code, and every later write is: all hold their pairs.
        SearchIndexState.objects.update_or_create(pk=1, defaults={"phrase_pairs": True})
    return done

"""Search: what people type, read as a web search, matched against the index (`tickets.models.search`).

The one search behind every face (the portal's list, the console, the API's `q=`): `ticket_list` filters
and ranks with it, and `search_snippets` gives the page's highlighted excerpts.

How a query reads:
- words are ANDed, and match any form of the word (English stems, accents ignored);
- `"an exact phrase"`, `-word` or `-"a phrase"` to exclude, `or` between two terms;
- the last word also matches every word that begins with it (search as you type);
- a ticket number in any form people type: `SUP-000123`, `SUP-123`, `#123`, `000123`, or `123` (which also
  matches the text "123").

Visibility: a customer's search reads the public document only, so it can never match on an internal
note or file (no oracle); providers and support read the staff document. Scoping to the tickets a party
may see is `tickets_visible_to`'s, as for every read.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, F, FloatField, Func, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from core.parties import Party
from tickets.models import Comment, SearchIndexState, Ticket, TicketSearch
from tickets.models.search import PREFIX_CONFIG, SEARCH_CONFIG, searchable_text_sql

# A query's terms beyond these are ignored: they bound the work one query can ask of the database.
MAX_TERMS = 16
# The rank annotation; `ordering=relevance` sorts on it.
RANK = "search_rank"
# A last word this short is not read as a prefix: "e" would match every word starting with it.
PREFIX_MIN_LENGTH = 2
SNIPPET = "search_snippet"

_TOKEN = re.compile(r'(?P<negated>-?)(?:"(?P<phrase>[^"]*)"?|(?P<word>[^\s"]+))')
# ASCII digits only, as every number read from outside (`core.formats.parse_plain_number`): "١" is no ticket 1.
_DIGITS = re.compile(r"0*([0-9]{1,18})")


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False
    negated: bool = False
    prefix: bool = False
    number: int | None = None  # the text names a ticket number
    words: bool = False  # a phrase read as its words ANDed, in any place (what the index answers alone)


@dataclass(frozen=True)
class TicketSearchQuery:
    """A parsed query: groups ANDed together, the terms of a group ORed; `sql` and `params` give it as a
    PostgreSQL `tsquery` expression."""

    text: str
    groups: tuple[tuple[Term, ...], ...]
    sql: str
    params: tuple[Any, ...]


def _number_in(word: str) -> tuple[int | None, bool]:
    """The ticket number a word names, and whether it is only that (`SUP-12`, `#12`) rather than digits
    that may also be text (`12`)."""
    prefix = settings.VE_TICKET_NUMBER_PREFIX.lower()
    lowered = word.lower()
    for marker in (prefix, prefix.rstrip("-"), "#"):
        if marker and lowered.startswith(marker):
            digits = _DIGITS.fullmatch(lowered.removeprefix(marker))
            return (int(digits.group(1)), True) if digits else (None, False)
    digits = _DIGITS.fullmatch(lowered)
    return (int(digits.group(1)), False) if digits else (None, False)


def _terms(text: str) -> list[tuple[Term, bool]]:
    """The terms of a query, each with whether an `or` joins it to the one before."""
    terms: list[tuple[Term, bool]] = []
    joined = False
    for match in _TOKEN.finditer(text):
        negated = bool(match.group("negated"))
        phrase = match.group("phrase")
        word = match.group("word")
        if word is not None and not negated and word.lower() == "or":
            joined = bool(terms)
            continue
        if phrase is not None:
            if phrase.strip():
                terms.append((Term(phrase.strip(), phrase=True, negated=negated), joined))
        elif word:
            number, only_number = _number_in(word)
            terms.append((Term(word, negated=negated, number=number, phrase=only_number), joined))
        joined = False
        if len(terms) >= MAX_TERMS:
            break
    if terms:
        last, joined_last = terms[-1]
        if not (last.phrase or last.negated) and len(last.text) >= PREFIX_MIN_LENGTH:
            terms[-1] = (Term(last.text, prefix=True, number=last.number), joined_last)
    return terms


def _as_prefix(config: str) -> str:
    # The words' query with its last lexeme made a prefix (`'deploy':*`); left as is if it has no lexeme
    # (a stop word) or does not end in one.
    choose = (
        "CASE WHEN numnode(w) = 0 OR right(w::text, 1) <> '''' THEN w ELSE (w::text || ':*')::tsquery END"
    )
    return f"(SELECT {choose} FROM websearch_to_tsquery('{config}', %s) AS w)"  # noqa: S608


def _term_sql(term: Term) -> tuple[str, list[Any]]:
    if term.phrase and term.number is not None:  # SUP-123, #123: the number and nothing else
        sql, params = "to_tsquery('simple', %s)", [f"{term.number:06d}"]
    elif term.phrase and term.words:
        sql, params = f"plainto_tsquery('{SEARCH_CONFIG}', %s)", [term.text]
    elif term.phrase:
        sql, params = f"websearch_to_tsquery('{SEARCH_CONFIG}', %s)", [f'"{term.text}"']
    elif term.prefix:
        # Its stem whole (every form of the word, as any word), or any word that begins with what was typed
        # (a whole word of a subject, description or name; a comment's stem). Not its stem as a prefix: where
        # stemming shortens a word typed whole, that also matched other words ("bebobe" is `bebob`, which
        # began ten times as many documents' words), and the index gathers every match of a prefix before it
        # can AND it with the other words: for "febibe bebobe" at 1M tickets, 42 ms this way, 11 ms the other.
        sql = f"(websearch_to_tsquery('{SEARCH_CONFIG}', %s) || {_as_prefix(PREFIX_CONFIG)})"
        params = [term.text, term.text]
    else:
        sql, params = f"websearch_to_tsquery('{SEARCH_CONFIG}', %s)", [term.text]
    if term.number is not None and not term.phrase:  # 123: the number, or the text "123"
        sql, params = f"(to_tsquery('simple', %s) || {sql})", [f"{term.number:06d}", *params]
    if term.negated:
        sql = f"(!! {sql})"
    return sql, params


def parse_search(text: str | None) -> TicketSearchQuery | None:
    """The query people typed, or None when it holds nothing to search for."""
    if not text or not text.strip():
        return None
    groups: list[list[Term]] = []
    for term, joined in _terms(text):
        if joined and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
    if not groups:
        return None
    sql, params = _groups_sql(groups)
    return TicketSearchQuery(
        text=text, groups=tuple(tuple(group) for group in groups), sql=sql, params=tuple(params)
    )


def _groups_sql(groups: Iterable[Iterable[Term]]) -> tuple[str, list[Any]]:
    """Groups ANDed, the terms of a group ORed, as a `tsquery` expression and its parameters."""
    group_sqls: list[str] = []
    params: list[Any] = []
    for group in groups:
        compiled = [_term_sql(term) for term in group]
        group_sqls.append("(" + " || ".join(sql for sql, _ in compiled) + ")")
        params.extend(param for _, term_params in compiled for param in term_params)
    return "(" + " && ".join(group_sqls) + ")", params


class _Matches(Func):
    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class _Rank(Func):
    function = "ts_rank"
    output_field = FloatField()


# A word in more than this share of the documents (PostgreSQL's estimate) is common: a page of it is found
# by walking tickets in order; a rarer one by reading the index's matches first.
COMMON_SHARE = 0.02
# Best match first ranks the most recently updated matches only, this many: ranking reads every ranked
# document, and a common word matches hundreds of thousands.
RELEVANCE_CANDIDATES = 200
# A query with a phrase of words ranks half as many. Its matches hold those words in that order, close in rank
# anyway; and each costs more to find: a phrase of two common words ("connection timeout") matched 1 ticket
# in 20 of those walked, and each check reads the words' positions. Ranking 200 took 78 ms at 1M tickets.
PHRASE_RELEVANCE_CANDIDATES = 100


def relevance_candidates(query: TicketSearchQuery) -> int:
    """How many of the most recently updated matches best match first ranks for `query`."""
    phrase = any(
        term.phrase and term.number is None and not term.negated and len(term.text.split()) > 1
        for group in query.groups
        for term in group
    )
    return PHRASE_RELEVANCE_CANDIDATES if phrase else RELEVANCE_CANDIDATES


# Candidates the page's query checks one by one (their documents read): where a probe is not the query
# itself (`_probe`), no more than this many.
FEW_MATCHES = 2_000


# A word (or the one group of a query) matched by no more than `MANY_MATCHES` documents is read from the
# index whole and handed to the page's query as the list of its tickets: PostgreSQL then fetches and sorts
# them, or walks the party's order against the list, by its exact size. Left to its own estimate of the
# matches (for a rare word often ten times too many), it walks the whole ticket table in the page's order
# (1M entries: 170 ms for a word in 692 tickets), or hashes the matches and reads every ticket's entry to sort
# them (220 ms for a word in 2,270 tickets, when the list stopped at 2,000).
#
# A query of several words is planned from what the index answers exactly: its probe (`_probe`). PostgreSQL
# multiplies the words' shares (two words in 1 % of documents each: 0.01 %), and a rare word's share is a
# guess (1 % for a word in 0.07 %). A probe matched by no more than this many documents is read whole, and its
# tickets handed to the page's query as a list: PostgreSQL then either fetches and sorts them or walks the
# party's order against the list, by its exact size. Where the probe leaves out the last word's prefix, the
# page's query checks the documents of the party's candidates, no more than `FEW_MATCHES` of them.
MANY_MATCHES = 20_000


# A phrase's `tsquery` as PostgreSQL writes it: lexemes, each but the last followed by `<->` or `<N>`.
_QUOTED = r"'((?:[^']|'')*)'"  # a lexeme as a `tsquery`'s text writes it, its text the group
_PHRASE_CHAIN = re.compile(rf"{_QUOTED}(?: <(?:-|[0-9]+)> {_QUOTED})*")
_CHAIN_LINK = re.compile(rf"{_QUOTED} <(-|[0-9]+)> (?={_QUOTED})")
# Once every staff document holds its pairs it always will (every write adds them): remembered from then on.
PAIRS_KNOWN_COMPLETE: dict[str, bool] = {"staff_doc": False}


def phrase_pairs_ready() -> bool:
    """Whether every staff document holds the pairs of its adjacent words (`SearchIndexState`)."""
    if not PAIRS_KNOWN_COMPLETE["staff_doc"]:
        PAIRS_KNOWN_COMPLETE["staff_doc"] = SearchIndexState.objects.filter(pk=1, phrase_pairs=True).exists()
    return PAIRS_KNOWN_COMPLETE["staff_doc"]


def phrase_pairs(query: TicketSearchQuery) -> str | None:
    """The pairs of adjacent words that every staff document matching `query` holds, as a `tsquery` of them
    ANDed (None if none): those of each phrase that a match must contain (not excluded, not one of an `or`).
    The index reads a rare phrase by them; a phrase's words alone are each in thousands of documents."""
    words: list[tuple[str, str]] = []
    for group in query.groups:
        if len(group) != 1:
            continue
        (term,) = group
        if not term.phrase or term.negated or term.number is not None or term.words:
            continue
        phrase = _tsquery_text(f"websearch_to_tsquery('{SEARCH_CONFIG}', %s)", (f'"{term.text}"',))
        if not _PHRASE_CHAIN.fullmatch(phrase):
            continue
        words += [
            (_unquoted(first), _unquoted(second))
            for first, distance, second in _CHAIN_LINK.findall(phrase)
            if distance == "-"
        ]
    # The state is read only for a query with a phrase (until every document has pairs, on each one).
    if not words or not phrase_pairs_ready():
        return None
    return _pair_lexemes(tuple(dict.fromkeys(words)))


def _unquoted(lexeme: str) -> str:
    # A lexeme as a `tsquery`'s text writes it: a quote and a backslash doubled.
    return re.sub(r"''|\\\\", lambda doubled: doubled.group(0)[0], lexeme)


@lru_cache(maxsize=512)
def _pair_lexemes(words: tuple[tuple[str, str], ...]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_literal(ve_search_pair(first, second)), ' & ') "
            "FROM unnest(%s::text[], %s::text[]) AS pair(first, second)",
            ([first for first, _ in words], [second for _, second in words]),
        )
        (text,) = cursor.fetchone()
    return str(text)


class _IsAnyOf(Func):
    """`expression = ANY(array)`."""

    arg_joiner = " = ANY("
    template = "(%(expressions)s))"
    output_field = BooleanField()


def _few_matching(column: str, tsquery_text: str, limit: int) -> _IsAnyOf | None:
    """Whether a ticket is one of those whose document matches, as the list of them, if there are no more
    than `limit` of them (else None). The list stays the text of an array from the database
    to the page's query (thousands of ids adapted one by one took 10 ms in Python), and is a constant there,
    of a size PostgreSQL plans with."""
    table = TicketSearch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(array_agg(ticket_id), '{{}}')::text "  # noqa: S608
            f"FROM (SELECT ticket_id FROM {table} WHERE {column} @@ %s::tsquery LIMIT %s) AS found",
            (tsquery_text, limit + 1),
        )
        count, ids = cursor.fetchone()
    if count > limit:
        return None
    return _IsAnyOf(F("pk"), RawSQL("%s::uuid[]", (ids,)))


@dataclass(frozen=True)
class _Probe:
    tsquery_text: str
    exact: bool  # matched by the same documents as the query (else by more: candidates, each then checked)


def _probe(query: TicketSearchQuery, column: str) -> _Probe | None:
    """What the index answers exactly and cheaply for a query of several terms, or None (then the query is
    planned by PostgreSQL's estimate of it, as one group of words is):
    - words ANDed (no phrase, no exclusion): the query itself, `exact`;
    - the groups but that of the last word, read as a prefix, when that is the commoner and the rest is rare
      (an index expands a prefix into every match of every word it starts before it can AND them: 90 ms for
      "memory"), without exclusions and with each phrase read as its words: candidates, each then checked.
    A phrase or an exclusion alone is left to the index's own check of its candidates (in table order): read
    one by one in the page's order, 11,000 of them (a rare phrase of two commoner words) took twice as long.
    """
    groups = query.groups
    if len(groups) == 1:
        return None
    relaxed = any(term.negated or (term.phrase and term.number is None) for group in groups for term in group)
    kept = [group for group in groups if not any(term.negated for term in group)]
    prefixed = [group for group in kept if any(term.prefix for term in group)]
    if prefixed and len(kept) > 1:
        rest = [group for group in kept if group is not prefixed[0]]
        rest_text = _probe_text(rest)
        rest_share = _share_matching(column, rest_text) if rest_text else 1.0
        if rest_share <= COMMON_SHARE and _share_matching(column, _probe_text([prefixed[0]])) > rest_share:
            return _Probe(rest_text, exact=False)
    if relaxed:
        return None
    text = _probe_text(kept)
    return _Probe(text, exact=True) if text else None


def _probe_text(groups: list[tuple[Term, ...]]) -> str:
    """The groups as a `tsquery` constant, each phrase of words read as those words ANDed."""
    relaxed = [
        tuple(
            Term(term.text, phrase=True, number=term.number, words=True)
            if term.phrase and term.number is None
            else term
            for term in group
        )
        for group in groups
    ]
    sql, params = _groups_sql(relaxed)
    return _tsquery_text(sql, tuple(params))


def _share_matching(column: str, tsquery_text: str) -> float:
    """PostgreSQL's estimate of the share of documents that match (from its statistics; nothing is read)."""
    table = TicketSearch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {column} @@ %s::tsquery",  # noqa: S608
            (tsquery_text,),
        )
        (plan,) = cursor.fetchone()
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))
        (total,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    rows = float(plan[0]["Plan"]["Plan Rows"])
    return rows / total if total and total > 0 else 1.0


@lru_cache(maxsize=512)
def _tsquery_text(sql: str, params: tuple[Any, ...]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ({sql})::text", params)
        (text,) = cursor.fetchone()
    return str(text)


def resolved(query: TicketSearchQuery) -> TicketSearchQuery:
    """The query as the `tsquery` constant it stands for. Passed as a constant, PostgreSQL plans with it (its
    statistics say how many documents match); as the expression that builds it, it guesses."""
    if query.params and query.sql == "%s::tsquery":
        return query
    text = _tsquery_text(query.sql, query.params)
    return TicketSearchQuery(text=query.text, groups=query.groups, sql="%s::tsquery", params=(text,))


def kept_search(party: Party, query: TicketSearchQuery) -> tuple[Hashable, str] | None:
    """A search as a kept statement (`core.statements`) sees it, where its SQL does not depend on the words:
    the shape (how many matches best match first ranks) and the words as one `tsquery` constant, the slot.
    A customer's: their few tickets are read first and each document checked. None for support and
    providers, whose statement follows what the index answers (the probe, the list of matches)."""
    if not party.is_customer:
        return None
    return relevance_candidates(query), str(resolved(query).params[0])


def with_tsquery(query: TicketSearchQuery, tsquery_text: str) -> TicketSearchQuery:
    """`query` with its words given as a `tsquery` constant (`kept_search`'s slot)."""
    return TicketSearchQuery(text=query.text, groups=query.groups, sql="%s::tsquery", params=(tsquery_text,))


def ticket_search(
    tickets: QuerySet[Ticket], party: Party, query: TicketSearchQuery, *, best_first: bool = False
) -> QuerySet[Ticket]:
    """`tickets` (already scoped to what the party sees) that match the query, with their relevance as
    `search_rank`; with `best_first`, only the most recently updated matches (`relevance_candidates`: the
    ones worth ranking)."""
    candidates = relevance_candidates(query)
    query = resolved(query)
    tsquery = RawSQL(query.sql, query.params)  # noqa: S611 — a tsquery constant, passed as a parameter
    column = "staff_doc" if party.sees_internal else "public_doc"
    # The document is read by a subquery per ticket, not joined: where the page's query checks documents
    # (walking tickets in order, or a few candidates) and for the rank. A join to the search table made
    # one more table for PostgreSQL to order among the page's seven, and planning took 5-8 ms longer
    # than the query ran (a customer's page: 6.6 ms of planning with the join, 1.6 without any search).
    own = TicketSearch.objects.filter(ticket_id=OuterRef("pk"))
    matches = Subquery(own.annotate(matched=_Matches(F(column), tsquery)).values("matched"))
    rank = Subquery(
        own.annotate(
            rank=Func(_Rank(F(column), tsquery), function="float8", output_field=FloatField())
        ).values("rank"),
        output_field=FloatField(),
    )
    visible = tickets
    # A customer's own tickets are few: reading them first is quicker than asking the index about everyone's.
    # For a common word, walking the party's tickets in the page's order and checking each one's document
    # finds a page at once. Otherwise the index's matches are read first: a few as the list of their tickets
    # (`FEW_MATCHES`), more whole behind an OFFSET 0 (which keeps PostgreSQL from folding them into a walk that
    # would read a document, kilobytes, per ticket it passes). A query of several terms is planned from its
    # probe (`MANY_MATCHES`).
    probe = None if party.is_customer else _probe(query, column)
    # What the index reads for the query's own matches: with its phrases' pairs, which only the staff
    # document holds. Its share is still the query's (the pairs' own statistics know nothing of phrases).
    pairs = phrase_pairs(query) if column == "staff_doc" else None
    indexed = f"({query.params[0]}) & {pairs}" if pairs else query.params[0]
    found: _IsAnyOf | None = None
    share: float | None = None  # of the query's matches, where the probe's is known to be it
    if probe is not None:
        probe_share = _share_matching(column, probe.tsquery_text)
        if probe_share <= COMMON_SHARE:
            probed = f"({probe.tsquery_text}) & {pairs}" if pairs and not probe.exact else probe.tsquery_text
            found = _few_matching(column, probed, MANY_MATCHES if probe.exact else FEW_MATCHES)
        share = probe_share if probe.exact else None
    if party.is_customer:
        tickets = tickets.filter(matches)
    elif probe is not None and found is not None:
        tickets = tickets.filter(found if probe.exact else found & matches)
    elif (share if share is not None else _share_matching(column, query.params[0])) > COMMON_SHARE:
        tickets = tickets.filter(matches)
    elif (probe is None or not probe.exact) and (
        few := _few_matching(column, indexed, MANY_MATCHES)
    ) is not None:
        tickets = tickets.filter(few)
    else:
        table = TicketSearch._meta.db_table
        matching = RawSQL(  # noqa: S611 — names from the model; the tsquery is a parameter
            f"SELECT ticket_id FROM {table} WHERE {column} @@ %s::tsquery OFFSET 0",  # noqa: S608
            (indexed,),
        )
        tickets = tickets.filter(pk__in=matching)
    if best_first:
        # The page's query reads only the most recent matches (already matched: their documents are not
        # checked twice).
        updated = "updated_at" if party.sees_internal else "public_updated_at"
        recent = tickets.order_by(f"-{updated}", "-id").values("pk")[:candidates]
        tickets = visible.filter(pk__in=recent)
    return tickets.annotate(**{RANK: rank})


# ---------------------------------------------------------------------------------------------------------
# Snippets: where a result matched, from text the party may read, HTML-escaped with the matches marked.

_START, _STOP = "\x02", "\x03"
# `<` and `>` travel through ts_headline as two private-use characters (it would drop what looks like a tag,
# and the index reads them as spaces: `searchable_text_sql`), and come back escaped.
_LT, _GT = 0xE000, 0xE001
HEADLINE_OPTIONS = 'MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'


def _snippet_sql(sees_internal: bool) -> str:
    internal = "" if sees_internal else "AND NOT c.is_internal"
    comments = Comment._meta.db_table
    tickets = Ticket._meta.db_table
    document = "staff_doc" if sees_internal else "public_doc"

    def matches(text: str, *, whole_words: bool) -> str:
        text = searchable_text_sql(text)
        vector = f"to_tsvector('{SEARCH_CONFIG}', {text})"
        if whole_words:
            vector = f"({vector} || to_tsvector('{PREFIX_CONFIG}', {text}))"
        return f"{vector} @@ q.q"

    # A comment is matched as the index holds it (stems only, `tickets.services.search_index`), a
    # description with its whole words too; and only where the ticket's own document says one of its
    # comments (weight C) or its description (B) can match (`_in_parts`): parsing five comments a ticket to
    # find none took half the time of a page's snippets. Without a document (not indexed yet) or a
    # restriction, every text is looked at.
    def may_match(part: str) -> str:
        # A scalar subquery where it is needed, not a lateral join: a ticket whose newest comment matches is
        # never asked about its description.
        table = TicketSearch._meta.db_table
        return f"coalesce((SELECT s.{document} @@ q.{part} FROM {table} s WHERE s.ticket_id = t.id), true)"  # noqa: S608

    return f"""
    SELECT t.id, ts_headline(
        '{SEARCH_CONFIG}',
        translate(coalesce(
            CASE WHEN {may_match("in_comments")} THEN
                (SELECT c.body FROM {comments} c
                 WHERE c.ticket_id = t.id {internal} AND {matches("c.body", whole_words=False)}
                 ORDER BY c.created_at DESC LIMIT 1)
            END,
            CASE WHEN {may_match("in_description")} AND {matches("t.description", whole_words=True)}
                THEN t.description END
        ), '<>' || chr(2) || chr(3) || chr({_LT}) || chr({_GT}), chr({_LT}) || chr({_GT})),
        q.q,
        'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', ' || %(options)s
    )
    FROM {tickets} t
    CROSS JOIN (SELECT {{query}} AS q, %(in_comments)s::tsquery AS in_comments,
                       %(in_description)s::tsquery AS in_description) q
    WHERE t.id = ANY(%(ids)s)
    """  # noqa: S608 — names from the models; the query's text is passed as parameters


# A lexeme of a `tsquery`'s text (quoted, a quote doubled) and its marks (`:*` a prefix; no weight: the
# queries built here carry none).
_LEXEME = re.compile(r"('(?:[^']|'')*')(?::(\*?))?")


def _in_parts(query: TicketSearchQuery) -> dict[str, str | None]:
    """`tsquery`s that a ticket's document matches wherever its comments (weight C) or its description (B)
    can match `query`: its words (a phrase's in any place; exclusions left out) restricted to that weight.
    They may match where no single text does (the words spread over two comments), never the other way
    round. None where there is nothing to restrict (only exclusions, or stop words): every text is read."""
    kept = [group for group in query.groups if not any(term.negated for term in group)]
    words = _probe_text(kept) if kept else ""

    def within(weight: str) -> str | None:
        if not words:
            return None
        return _LEXEME.sub(lambda found: f"{found.group(1)}:{found.group(2) or ''}{weight}", words)

    return {"in_comments": within("C"), "in_description": within("B")}


def search_snippets(
    party: Party, ticket_ids: Iterable[uuid.UUID | str], query: TicketSearchQuery
) -> dict[str, str]:
    """For each ticket id that matched in its conversation, an excerpt of where (the newest matching comment
    the party may read, else the description; the subject is shown anyway): HTML-escaped, the matched words
    in `<mark>`."""
    ids = [str(ticket_id) for ticket_id in ticket_ids]
    if not ids:
        return {}
    parts = _in_parts(query)
    query = resolved(query)
    # The query's placeholders are positional (%s); the statement's own are named: number them all.
    named = {f"q{index}": param for index, param in enumerate(query.params)}
    query_sql = query.sql
    for index in range(len(query.params)):
        query_sql = query_sql.replace("%s", f"%(q{index})s", 1)
    statement = _snippet_sql(party.sees_internal).replace("{query}", query_sql)
    with connection.cursor() as cursor:
        cursor.execute(statement, {**named, **parts, "ids": ids, "options": HEADLINE_OPTIONS})
        rows = cursor.fetchall()
    return {str(ticket_id): _marked(headline) for ticket_id, headline in rows if headline}


def _marked(headline: str) -> str:
    marked = escape(headline).replace(_START, "<mark>").replace(_STOP, "</mark>")
    return marked.replace(chr(_LT), "&lt;").replace(chr(_GT), "&gt;")


def rows_with_snippets(party: Party, rows: list[dict[str, Any]], text: str | None) -> list[dict[str, Any]]:
    """A page of ticket rows from a search for `text`, each with its snippet (`search_snippet`, None where
    the ticket matched by something else than its text: a number, a lease ID, a person)."""
    query = parse_search(text)
    if query is None or not rows:
        return rows
    snippets = search_snippets(party, [row["id"] for row in rows], query)
    return [{**row, SNIPPET: snippets.get(str(row["id"]))} for row in rows]

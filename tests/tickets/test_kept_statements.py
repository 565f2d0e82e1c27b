"""The list's pages and a ticket's detail come from statements compiled once per shape and prepared on the
server (core.statements, core.prepared): the same rows as the ORM reads them, for every party, filter,
ordering and cursor, and never another party's."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from core.errors import NotFound
from core.parties import Party
from core.statements import StatementCache
from tests.conftest import World
from tickets import selectors, services
from tickets.api.pagination import paginate, ticket_page
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def many(world: World) -> World:
    """Tickets of both customers over their deployments and providers, in several states and priorities."""
    for index, (priority, status) in enumerate(
        itertools.product(["low", "critical", "medium"], ["open", "in_progress", "resolved"])
    ):
        for actor in (world.alice, world.bob):
            ticket = world.open_ticket(actor, priority=priority, subject=f"Ticket {index}")
            if status != "open":
                services.ticket_update(actor=world.agent, ticket_id=ticket.id, status=status)
    world.open_ticket(world.alice, deployment_id=world.alice_second_deployment.lease_id)  # on provider B
    return world


def orm_page(party: Party, filters: selectors.TicketFilters, ordering: str, limit: int, cursor: str | None):
    listed = selectors.ticket_list(party, filters, rank_by_priority=ordering.endswith("priority"))
    return paginate(listed, ordering=ordering, limit=limit, cursor=cursor)


FILTERS = [
    selectors.TicketFilters(),
    selectors.TicketFilters(status="open"),
    selectors.TicketFilters(priority="critical", category="technical"),
]
ORDERINGS = ["-created_at", "created_at", "-updated_at", "priority", "-priority", "sla_due", "-sla_due"]


def test_every_page_is_the_one_the_orm_reads_for_every_party(many: World) -> None:
    world = many
    parties = [world.alice, world.bob, world.provider_a_member, world.provider_b_member, world.agent]
    for party, filters, ordering in itertools.product(parties, FILTERS, ORDERINGS):
        cursor = None
        for _ in range(12):  # every page, two rows at a time: the cursors' shapes too
            kept = ticket_page(party, filters, ordering=ordering, limit=2, cursor=cursor)
            read = orm_page(party, filters, ordering, 2, cursor)
            assert kept == read, (party.label, filters, ordering, cursor)
            cursor = kept.next_cursor
            if cursor is None:
                break


def test_a_deployment_filter_is_a_value_not_a_shape(many: World) -> None:
    world = many
    for deployment in (world.alice_deployment, world.alice_second_deployment, world.bob_deployment):
        filters = selectors.TicketFilters(deployment_id=deployment.lease_id)
        for party in (world.alice, world.agent, world.provider_b_member):
            kept = ticket_page(party, filters, ordering="-created_at", limit=50, cursor=None)
            assert kept == orm_page(party, filters, "-created_at", 50, None)
            assert {row["deployment_lease_id"] for row in kept.items} <= {deployment.lease_id}


def test_parties_sharing_a_statement_each_see_only_their_own(many: World) -> None:
    world = many
    with CaptureQueriesContext(connection) as alice_reads:
        alice_page = ticket_page(
            world.alice, selectors.TicketFilters(), ordering="-created_at", limit=50, cursor=None
        )
    with CaptureQueriesContext(connection) as bob_reads:
        bob_page = ticket_page(
            world.bob, selectors.TicketFilters(), ordering="-created_at", limit=50, cursor=None
        )
    assert {row["customer_address"] for row in alice_page.items} == {world.alice.address}
    assert {row["customer_address"] for row in bob_page.items} == {world.bob.address}
    assert len(alice_page.items) == 10
    assert len(bob_page.items) == 9
    # One statement, each party's address in it as the query was logged (the text of a prepared one too).
    (alice_sql,) = [query["sql"] for query in alice_reads.captured_queries]
    (bob_sql,) = [query["sql"] for query in bob_reads.captured_queries]
    assert alice_sql.replace(world.alice.address, "?") == bob_sql.replace(world.bob.address, "?")
    assert world.alice.address in alice_sql
    assert world.alice.address not in bob_sql


def test_the_detail_is_found_only_by_those_who_may_see_it(many: World) -> None:
    world = many
    alices = Ticket.objects.filter(customer_address=world.alice.address, provider=world.provider_a).first()
    bobs = Ticket.objects.filter(customer_address=world.bob.address).first()
    assert alices is not None
    assert bobs is not None
    sees = {
        world.alice: {alices.id},
        world.bob: {bobs.id},
        world.provider_a_member: {alices.id},
        world.provider_b_member: {bobs.id},
        world.agent: {alices.id, bobs.id},
    }
    for _ in range(2):  # learnt by the first party of each kind, then kept
        for party, visible in sees.items():
            for ticket in (alices, bobs):
                if ticket.id in visible:
                    detail = selectors.ticket_detail(party, ticket.id)
                    expected = selectors.ticket_list(party, selectors.TicketFilters()).get(pk=ticket.id)
                    assert detail.row == expected
                else:
                    with pytest.raises(NotFound):
                        selectors.ticket_detail(party, ticket.id)


def test_the_list_statement_is_prepared_on_the_server(many: World, settings) -> None:
    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%tickets_ticket%'"
            )
            return [statement for (statement,) in cursor.fetchall()]

    ticket_page(many.alice, selectors.TicketFilters(), ordering="-created_at", limit=7, cursor=None)
    assert any("LIMIT 8" in statement and "$1" in statement for statement in prepared())


def test_prepared_statements_can_be_turned_off(many: World) -> None:
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("prepare_threshold")
    options["prepare_threshold"] = None  # DATABASE_PREPARED_STATEMENTS=false
    try:
        page = ticket_page(many.bob, selectors.TicketFilters(), ordering="-created_at", limit=9, cursor=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%LIMIT 10%'")
            assert cursor.fetchone() == (0,)
    finally:
        options["prepare_threshold"] = saved
    assert page == orm_page(many.bob, selectors.TicketFilters(), "-created_at", 9, None)


def test_a_value_that_changes_more_than_a_parameter_is_never_kept(many: World) -> None:
    """A slot whose value is transformed on its way into the SQL (here `icontains` wraps it in %…%) cannot
    be put in a kept statement: the query is built every time, with the same rows."""
    cache = StatementCache()

    def build(slots):
        return (
            Ticket.objects.filter(subject__icontains=slots["word"]).order_by("created_at").values("subject")
        )

    for word in ("Ticket 1", "Ticket 2"):
        rows = cache.rows("subjects", build, {"word": word})
        assert rows == list(build({"word": word}))
        assert rows
        assert all(word in row["subject"] for row in rows)


def test_an_integer_fields_value_is_a_slot_too(many: World) -> None:
    """Django sends an integer field's value in psycopg's wrapper of its size (Int8 for a bigint): a slot
    all the same, learnt once and kept, and sent in the same wrapper."""
    cache = StatementCache()
    builds = []

    def build(slots):
        builds.append(slots)
        return Ticket.objects.filter(number__gte=slots["number"]).order_by("number").values("number")

    numbers = sorted(Ticket.objects.values_list("number", flat=True))
    for number in [*numbers[:3], *numbers[:3]]:
        rows = cache.rows("from", build, {"number": number})
        assert rows == [{"number": n} for n in numbers if n >= number]
    assert len(builds) == 2  # learnt (built with two sets of stand-ins), then kept


def test_rows_keep_their_names_whatever_the_order_of_fields_and_annotations(many: World) -> None:
    """`.values()` naming an annotation before a plain field: every row has its values under its names,
    whether the statement is kept (named in the order `.values()` gave) or not."""
    cache = StatementCache()

    def build(slots):
        return (
            Ticket.objects.filter(number__gte=slots["number"])
            .order_by("number")
            .annotate(label=Concat(Value("#"), F("subject")))
            .values("label", "subject", "number")
        )

    first = min(Ticket.objects.values_list("number", flat=True))
    for _ in range(2):
        rows = cache.rows("labelled", build, {"number": first})
        assert rows == list(build({"number": first}))
        assert all(row["label"] == f"#{row['subject']}" for row in rows)


def test_a_customers_search_is_kept_its_words_a_value(many: World) -> None:
    """A customer's search reads their own tickets and checks each document: its statement is the same for
    any words, which are a value (the `tsquery`). Support's follows what the index answers: never kept."""
    world = many

    def searched(statements: str) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{statements}%"]
            )
            return [statement for (statement,) in cursor.fetchall()]

    for party, q, ordering in itertools.product(
        [world.alice, world.bob], ["ticket", '"ticket 4"', "4 or 5", "tick"], ["relevance", "-updated_at"]
    ):
        filters = selectors.TicketFilters(q=q)
        cursor = None
        for _ in range(12):
            kept = ticket_page(party, filters, ordering=ordering, limit=2, cursor=cursor)
            listed = selectors.ticket_list(party, filters, best_match_first=ordering == "relevance")
            assert kept == paginate(listed, ordering=ordering, limit=2, cursor=cursor), (
                party.label,
                q,
                ordering,
            )
            cursor = kept.next_cursor
            if cursor is None:
                break
    assert any("::tsquery" in statement and "$1" in statement for statement in searched("tsquery"))
    before = set(searched("tsquery"))
    ticket_page(world.agent, selectors.TicketFilters(q="ticket"), ordering="relevance", limit=2, cursor=None)
    assert set(searched("tsquery")) == before

"""Search through every face (API `q=`, the portal's list and its live rows, the console's ticket list):
what it finds, how it reads a query, ranking, snippets, consistency with writes, the rebuild command, and
that a customer's search never matches text they may not read (no oracle over internal notes)."""

from __future__ import annotations

import io
import random
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import services as provider_services
from providers.selectors import provider_party
from tests.conftest import Apis, World
from tests.sockets import session_client as signed_in
from tickets import services
from tickets.models import SearchIndexState, Ticket, TicketSearch
from tickets.selectors import TicketFilters, ticket_list
from tickets.selectors import search as search_selectors
from tickets.services import search_index
from tickets.tasks import search_pending_merge_task

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets"


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [ticket["number"] for ticket in response.json()]


def portal_numbers(client: Client, **params: str) -> list[str]:
    response = client.get("/tickets/", params)
    assert response.status_code == 200
    return re.findall(r'class="ticket-number">(SUP-\d+)<', response.content.decode())


def console_numbers(client: Client, q: str) -> list[str]:
    response = client.get("/admin/tickets/ticket/", {"q": q})
    assert response.status_code == 200
    return re.findall(r">(SUP-\d{6})<", response.content.decode())


@pytest.fixture
def refund_note(world: World) -> Ticket:
    """A ticket whose only mention of "refund" is an internal note (and an internal file name)."""
    ticket = world.open_ticket(subject="Ingress returns 502", description="Since the redeploy.")
    services.comment_add(actor=world.alice, ticket_id=ticket.id, body="Still broken this morning.")
    services.comment_add(
        actor=world.provider_a_member,
        ticket_id=ticket.id,
        body="Offer a refund if the node stays down.",
        is_internal=True,
    )
    return ticket


class TestWhatItFinds:
    def test_the_ticket_number_in_every_form_people_type(self, world: World, apis: Apis) -> None:
        tickets = [
            world.open_ticket(subject=f"Ticket {word}") for word in ("one", "two", "three", "four", "five")
        ]
        fourth = tickets[3].display_number  # e.g. SUP-000004
        number = tickets[3].number
        for typed in (fourth, fourth.lower(), f"{number:06d}", str(number), f"#{number}", f"SUP-{number}"):
            assert numbers(apis.agent.get(TICKETS, q=typed))[0] == fourth, typed
        # A bare number is that ticket, not every ticket whose number contains the digit.
        assert numbers(apis.agent.get(TICKETS, q=str(number))) == [fourth]
        # Nor every ticket whose lease ID ends in /1/1 (gseq and oseq are not words of their own).
        assert set(numbers(apis.agent.get(TICKETS, q="1"))) <= {"SUP-000001"}
        # Digits of another script are text, not a ticket number ("٤" is Arabic-Indic four).
        assert numbers(apis.agent.get(TICKETS, q="٤")) == []
        assert numbers(apis.agent.get(TICKETS, q="SUP-٤")) == []

    def test_subject_description_comments_file_names_and_lease(self, world: World, apis: Apis) -> None:
        subject = world.open_ticket(subject="Kubelet eviction storm")
        description = world.open_ticket(description="The volume mount hangs forever")
        bracketed = world.open_ticket(description="kubectl shows <pending> for the external IP")
        comment = world.open_ticket()
        services.comment_add(actor=world.alice, ticket_id=comment.id, body="Now the certificate expired")
        upload = apis.alice.upload("netstat-dump.txt", b"tcp 0 0 LISTEN\n")
        assert upload.status_code == 201, upload.content
        filed = world.open_ticket(attachment_ids=[upload.json()["id"]])
        leased = world.open_ticket(deployment_id=world.alice_second_deployment.lease_id)
        dseq = str(world.alice_second_deployment.dseq)
        for typed, expected in (
            ("eviction", subject),
            ("volume hangs", description),
            ("pending", bracketed),  # words in angle brackets are words, not HTML tags
            ("certificate", comment),
            ("netstat-dump.txt", filed),
            (world.alice_second_deployment.lease_id, leased),
            (world.alice_second_deployment.name, leased),
        ):
            assert numbers(apis.alice.get(TICKETS, q=typed)) == [expected.display_number], typed
        assert leased.display_number in numbers(apis.alice.get(TICKETS, q=dseq))

    def test_people_for_providers_and_support_only(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket(subject="Slow disk")
        user = get_user_model().objects.get(pk=world.alice.user_id)
        user.first_name, user.last_name, user.email = "Alice", "Lindqvist", "alice@lindqvist.example"
        user.save()
        for typed in ("Lindqvist", "alice@lindqvist.example", world.alice.address, "Provider A"):
            assert numbers(apis.agent.get(TICKETS, q=typed)) == [ticket.display_number], typed
            assert numbers(apis.provider_a.get(TICKETS, q=typed)) == [ticket.display_number], typed
        # Customers do not search by the people on their tickets (it would match them all anyway).
        assert numbers(apis.alice.get(TICKETS, q="Lindqvist")) == []


class TestHowItReadsAQuery:
    @pytest.fixture
    def corpus(self, world: World) -> dict[str, Ticket]:
        return {
            "crashed": world.open_ticket(subject="Pod crashed twice", description="after the update"),
            "memory": world.open_ticket(subject="Out of memory", description="the pod crashed"),
            "cafe": world.open_ticket(subject="Café menu service down", description="deployment of v2"),
            "timeout": world.open_ticket(subject="Gateway timeout", description="intermittent"),
        }

    def search(self, apis: Apis, q: str) -> set[str]:
        return set(numbers(apis.alice.get(TICKETS, q=q)))

    def test_stems_accents_phrases_exclusions_or_and_prefixes(self, apis: Apis, corpus) -> None:
        number = {name: ticket.display_number for name, ticket in corpus.items()}
        assert self.search(apis, "crashing") == {number["crashed"], number["memory"]}  # stems
        assert self.search(apis, "cafe") == {number["cafe"]}  # accents
        assert self.search(apis, '"pod crashed"') == {number["crashed"], number["memory"]}
        assert self.search(apis, '"crashed pod"') == set()  # a phrase is in order
        assert self.search(apis, "crashed -memory") == {number["crashed"]}
        assert self.search(apis, "memory or timeout") == {number["memory"], number["timeout"]}
        assert self.search(apis, "pod memory") == {number["memory"]}  # words are ANDed
        assert self.search(apis, "gatew") == {number["timeout"]}  # search as you type
        assert self.search(apis, "deployme") == {number["cafe"]}  # halfway through a stemmed word

    def test_a_word_typed_whole_finds_its_forms_not_other_words_that_begin_like_its_stem(
        self, world: World, apis: Apis
    ) -> None:
        connected = world.open_ticket(subject="Node connected again", description="after a restart")
        connector = world.open_ticket(subject="Broken connector", description="on the rack")
        in_comment = world.open_ticket(subject="Pods", description="stuck")
        services.comment_add(actor=world.alice, ticket_id=in_comment.id, body="The pods keep reconnecting")
        # "connection" is the stem `connect`: every form of it, not `connector`, another word.
        assert self.search(apis, "connection") == {connected.display_number}
        assert self.search(apis, "connected") == {connected.display_number}
        # Typed halfway, a word finds every word that begins with it, in a comment's stems too.
        assert self.search(apis, "connec") == {connected.display_number, connector.display_number}
        assert self.search(apis, "reconn") == {in_comment.display_number}
        assert self.search(apis, "broken conn") == {connector.display_number}

    @pytest.mark.parametrize(
        "q",
        [
            '"',
            "-",
            "or",
            "the",
            "-the",
            "!",
            "a & b | c",
            "(",
            "'",
            ":*",
            "\\",
            "%s",
            "%(x)s",
            '-"',
            "🙂",
            "SUP-",
            "#",
            "0",
        ],
    )
    def test_any_text_is_a_query_or_nothing_never_an_error(self, apis: Apis, corpus, q: str) -> None:
        for party in (apis.alice, apis.provider_a, apis.agent):
            assert party.get(TICKETS, q=q).status_code == 200

    def test_a_query_too_long_or_a_relevance_sort_without_one_is_refused(self, apis: Apis) -> None:
        too_long = apis.alice.get(TICKETS, q="x" * 1000)
        assert too_long.status_code == 400
        assert "q" in too_long.json()["fields"]
        no_query = apis.alice.get(TICKETS, ordering="relevance")
        assert no_query.status_code == 400
        assert "ordering" in no_query.json()["fields"]


class TestResults:
    def test_best_match_first_in_keyset_pages_with_the_other_filters(self, world: World, apis: Apis) -> None:
        in_comment = world.open_ticket(subject="Something odd")
        services.comment_add(actor=world.alice, ticket_id=in_comment.id, body="the firewall drops packets")
        in_subject = world.open_ticket(subject="Firewall drops packets")
        world.open_ticket(subject="Firewall closed", priority="low")
        seen, cursor = [], None
        while True:
            response = apis.alice.get(
                TICKETS, q="firewall", limit=1, **({"cursor": cursor} if cursor else {})
            )
            seen += numbers(response)
            link = response.headers.get("Link")
            if not link:
                break
            cursor = re.search(r"cursor=([^&>]+)", link).group(1)
        assert len(seen) == len(set(seen)) == 3
        assert seen[-1] == in_comment.display_number  # a subject weighs more than a comment
        filtered = numbers(apis.alice.get(TICKETS, q="firewall", priority="high"))
        assert set(filtered) == {in_comment.display_number, in_subject.display_number}
        by_date = numbers(apis.alice.get(TICKETS, q="firewall", ordering="created_at"))
        assert by_date[0] == in_comment.display_number

    def test_best_match_ranks_the_newest_matches_fewer_with_a_phrase(
        self, world: World, apis: Apis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(search_selectors, "RELEVANCE_CANDIDATES", 3)
        monkeypatch.setattr(search_selectors, "PHRASE_RELEVANCE_CANDIDATES", 2)
        tickets = [world.open_ticket(subject=f"Firewall drops packets {n}") for n in range(4)]
        newest_first = [ticket.display_number for ticket in reversed(tickets)]

        def listed(q: str, **params: str) -> list[str]:
            response = apis.alice.get(TICKETS, q=q, limit=10, **params)
            assert response.status_code == 200, response.content
            return numbers(response)

        assert sorted(listed("drops")) == sorted(newest_first[:3])
        assert sorted(listed('"firewall drops"')) == sorted(newest_first[:2])
        assert sorted(listed('"firewall drops" packets')) == sorted(newest_first[:2])
        assert sorted(listed('"firewall"')) == sorted(newest_first[:3])  # one word: no positions to check
        assert listed('"firewall drops"', ordering="-updated_at") == newest_first

    def test_customers_searches_one_after_another_each_find_their_own(self, world: World, apis: Apis) -> None:
        """A customer's search page is a kept statement, its words and scope the slots: neither may stick
        from one search to the next."""
        firewall = world.open_ticket(subject="Firewall drops packets")
        disk = world.open_ticket(subject="Disk full")
        bobs = world.open_ticket(actor=world.bob, subject="Firewall and disk both broken")
        for _ in range(2):
            assert numbers(apis.alice.get(TICKETS, q="firewall")) == [firewall.display_number]
            assert numbers(apis.alice.get(TICKETS, q="disk")) == [disk.display_number]
            assert numbers(apis.bob.get(TICKETS, q="firewall")) == [bobs.display_number]
            assert numbers(apis.alice.get(TICKETS, q='"drops packets"')) == [firewall.display_number]
            assert numbers(apis.alice.get(TICKETS, q="nothing-like-this")) == []
            listed = apis.alice.get(TICKETS, q="disk or firewall", ordering="-updated_at")
            assert numbers(listed) == [disk.display_number, firewall.display_number]

    def test_a_snippet_marks_the_match_and_escapes_the_text(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        services.comment_add(
            actor=world.alice,
            ticket_id=ticket.id,
            body='the widget \x02leaks\x03 when x<3 && y>"2" <img src=x onerror=alert(1)>',
        )
        (result,) = apis.alice.get(TICKETS, q="widget").json()
        snippet = result["match"]["snippet"]
        assert "<mark>widget</mark>" in snippet
        assert "x&lt;3 &amp;&amp; y&gt;&quot;2&quot;" in snippet
        assert "<img" not in snippet
        assert "<" not in snippet.replace("<mark>", "").replace("</mark>", "")
        assert "\x02" not in snippet
        assert "<mark>leaks" not in snippet
        assert result["match"]["rank"] > 0
        assert apis.alice.get(TICKETS).json()[0]["match"] is None  # not searching

    def test_the_portal_offers_best_match_only_while_searching(self, world: World) -> None:
        older = world.open_ticket(subject="Firewall closed")
        newer = world.open_ticket(subject="Firewall open")
        alice = signed_in(world.alice.user_id)

        def sort_options(**params: str) -> list[tuple[str, str, bool]]:
            page = alice.get("/tickets/", params).content.decode()
            select = re.search(r'<select id="id_ordering".*?</select>', page, re.S).group(0)
            found = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
            return [(value, label, bool(chosen)) for value, chosen, label in found]

        blank = sort_options()
        assert blank[0] == ("", "Newest first", True)
        assert [label for _, label, _ in blank].count("Newest first") == 1
        assert "Best match" not in [label for _, label, _ in blank]
        searching = sort_options(q="firewall")
        assert searching[:2] == [("", "Best match", True), ("-created_at", "Newest first", False)]
        # Newest first chosen in a search, then the search cleared: accepted, and shown under its one name.
        cleared = sort_options(ordering="-created_at", status="open")
        assert not any(chosen for _, _, chosen in cleared)  # the browser shows the first: "Newest first"
        assert portal_numbers(alice, ordering="-created_at", status="open") == [
            newer.display_number,
            older.display_number,
        ]


class TestWhichTextASnippetShows:
    """The newest comment the searcher may read that matches the whole query, else the description. Where
    the ticket's document says no comment (or no description) can match, that text is not looked at; these
    cases are the ones where the document's answer and a single text's differ."""

    @staticmethod
    def snippet(apis: Apis, q: str, ticket: Ticket) -> str | None:
        found = {row["id"]: row["match"]["snippet"] for row in apis.agent.get(TICKETS, q=q).json()}
        assert str(ticket.id) in found, q
        return found[str(ticket.id)]

    @pytest.fixture
    def ticket(self, world: World) -> Ticket:
        ticket = world.open_ticket(
            subject="Quokka", description="Both aardvark and pangolin escaped, with a badger in tow."
        )
        for body in (
            "An aardvark sighting near the gate.",  # oldest
            "A badger and an aardvark at the feeder.",
            "Only a pangolin today.",  # newest
        ):
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body=body)
        return ticket

    def test_the_newest_comment_with_every_word(self, apis: Apis, ticket: Ticket) -> None:
        assert "feeder" in self.snippet(apis, "aardvark", ticket)
        assert "feeder" in self.snippet(apis, "aardvark -zebra", ticket)
        assert "feeder" in self.snippet(apis, '"badger and an aardvark"', ticket)

    def test_words_spread_over_two_comments_show_the_description(self, apis: Apis, ticket: Ticket) -> None:
        # The document holds both words among its comments; no single comment holds both.
        assert "escaped" in self.snippet(apis, "aardvark pangolin", ticket)

    def test_exclusions_alone_and_either_of_two_words(self, apis: Apis, ticket: Ticket) -> None:
        assert "pangolin today" in self.snippet(apis, "-zebra", ticket)  # every text is looked at
        assert self.snippet(apis, "quokka -zebra", ticket) is None  # matched by its subject: no excerpt
        assert "<mark>pangolin</mark> today" in self.snippet(apis, "quokka or pangolin", ticket)

    def test_a_half_typed_word_finds_the_comment_it_found_the_ticket_by(
        self, apis: Apis, ticket: Ticket
    ) -> None:
        assert "feeder" in self.snippet(apis, "badg", ticket)

    def test_a_ticket_without_documents_yet_still_gets_its_snippet(
        self, world: World, ticket: Ticket
    ) -> None:
        # Between a migration and the rebuild: the search reads no document, the snippet still reads the text.
        TicketSearch.objects.filter(ticket=ticket).delete()
        query = search_selectors.parse_search("aardvark")
        snippets = search_selectors.search_snippets(world.agent, [ticket.id], query)
        assert "feeder" in snippets[str(ticket.id)]


class TestVisibility:
    """The oracle case: an internal note says "refund"; the customer's search for it must find nothing."""

    def test_api(self, world: World, apis: Apis, refund_note: Ticket) -> None:
        assert numbers(apis.alice.get(TICKETS, q="refund")) == []
        assert numbers(apis.alice.get(TICKETS, q='"offer a refund"')) == []
        assert numbers(apis.alice.get(TICKETS, q="refu")) == []  # as a prefix neither
        assert numbers(apis.alice.get(TICKETS, q="ingress -refund")) == [refund_note.display_number]
        assert numbers(apis.provider_a.get(TICKETS, q="refund")) == [refund_note.display_number]
        assert numbers(apis.agent.get(TICKETS, q="refund")) == [refund_note.display_number]
        # Another party's ticket does not exist for the search either.
        assert numbers(apis.bob.get(TICKETS, q="ingress")) == []
        assert numbers(apis.provider_b.get(TICKETS, q="ingress")) == []

    def test_internal_files_such_as_deployment_logs(self, world: World, apis: Apis, refund_note) -> None:
        upload = apis.provider_a_member.upload("node-kernel-panic.log", b"panic\n")
        assert upload.status_code == 201, upload.content
        services.attachment_attach(
            actor=world.provider_a_member,
            ticket_id=refund_note.id,
            attachment_ids=[upload.json()["id"]],
            is_internal=True,
        )
        assert numbers(apis.alice.get(TICKETS, q="node-kernel-panic.log")) == []
        assert numbers(apis.alice.get(TICKETS, q="panic")) == []
        assert numbers(apis.provider_a.get(TICKETS, q="panic")) == [refund_note.display_number]

    def test_portal_list_and_its_live_rows(self, world: World, apis: Apis, refund_note: Ticket) -> None:
        alice = signed_in(world.alice.user_id)
        assert portal_numbers(alice, q="refund") == []
        assert portal_numbers(alice, q="ingress") == [refund_note.display_number]
        # The row the list fetches when a socket frame about the ticket arrives.
        row = alice.get(f"/tickets/rows/{refund_note.id}/", {"q": "refund"})
        assert row.status_code == 204
        assert alice.get(f"/tickets/rows/{refund_note.id}/", {"q": "ingress"}).status_code == 200
        provider = signed_in(world.provider_a_member.user_id)
        assert portal_numbers(provider, q="refund") == [refund_note.display_number]

    def test_console(self, world: World, refund_note: Ticket) -> None:
        agent = signed_in(world.agent.user_id)
        assert console_numbers(agent, "refund") == [refund_note.display_number]
        assert console_numbers(agent, refund_note.display_number) == [refund_note.display_number]
        assert console_numbers(agent, "alice") == [refund_note.display_number]  # the customer's name
        page = agent.get("/admin/tickets/ticket/", {"q": "refund"}).content.decode()
        assert "<mark>refund</mark>" in page
        # A customer has no console at all.
        alice = signed_in(world.alice.user_id)
        assert alice.get("/admin/tickets/ticket/", {"q": "refund"}).status_code == 302


class TestEveryPlanFindsTheSame:
    """Provider and support searches take one of three plans by how many documents match (walking the
    party's tickets in order, the index's matches as a list, or too many of them behind a fence); on a
    test database PostgreSQL's statistics would pick one. Each is forced here: same results, same scope."""

    PLANS = {
        "walk the party's order": {"COMMON_SHARE": -1.0},
        "the matches as a list": {"COMMON_SHARE": 2.0, "MANY_MATCHES": 10_000},
        "too many for a list, behind a fence": {"COMMON_SHARE": 2.0, "MANY_MATCHES": 0},
    }

    @pytest.mark.parametrize("plan", PLANS)
    def test_plan(
        self, plan: str, world: World, apis: Apis, refund_note: Ticket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in self.PLANS[plan].items():
            monkeypatch.setattr(search_selectors, name, value)
        in_subject = world.open_ticket(subject="Refund for the lost lease")
        world.open_ticket(subject="Nothing to see")
        for api in (apis.provider_a, apis.agent):
            found = numbers(api.get(TICKETS, q="refund"))
            assert found == [in_subject.display_number, refund_note.display_number], plan  # subject first
            by_date = numbers(api.get(TICKETS, q="refund", ordering="created_at"))
            assert by_date == [refund_note.display_number, in_subject.display_number], plan
        assert numbers(apis.provider_b.get(TICKETS, q="refund")) == [], plan
        assert numbers(apis.alice.get(TICKETS, q="refund")) == [in_subject.display_number], plan


class TestEveryPlanOfSeveralTermsFindsTheSame:
    """A query of several words is planned from its probe: what the index answers alone (`_probe`), read as a
    list when it is not common; with the last word's prefix left out, its candidates are then checked against
    their documents (phrases and exclusions among them). Every plan must give what walking the party's
    tickets gives: the same tickets, in the same order, on every page, phrases, exclusions and `or` included."""

    QUERIES = (
        "refund node",
        "node refund",
        '"stays down"',
        '"stays down" refund',
        '"lost lease"',
        "refund -lease",
        "refund or lease",
        '-"stays down" refund',
        "refund nothin",
    )
    PLANS = {
        "the probe's matches as a list": {"COMMON_SHARE": 2.0, "MANY_MATCHES": 10_000},
        "too many candidates to check, then the query's matches as a list": {
            "COMMON_SHARE": 2.0,
            "FEW_MATCHES": 0,
            "MANY_MATCHES": 10_000,
        },
        "too many for a list, then behind a fence": {
            "COMMON_SHARE": 2.0,
            "MANY_MATCHES": 0,
            "FEW_MATCHES": 0,
        },
    }

    @pytest.fixture
    def tickets(self, world: World, refund_note: Ticket) -> list[Ticket]:
        lease = world.open_ticket(subject="Refund for the lost lease")
        node = world.open_ticket(subject="Node refund", description="The node stays down; a refund is fair.")
        services.comment_add(actor=world.alice, ticket_id=node.id, body="It stays down since Monday.")
        down = world.open_ticket(subject="Nothing to see", description="It stays down")
        return [refund_note, lease, node, down, world.open_ticket(subject="Nothing refund-worthy")]

    def found(self, apis: Apis) -> dict[tuple[str, str, str], list[str]]:
        found = {}
        for name in ("provider_a", "agent", "alice", "provider_b"):
            for q in self.QUERIES:
                for ordering in ("relevance", "created_at", "-created_at"):
                    pages, params = [], {"q": q, "ordering": ordering, "limit": "2"}
                    while True:  # pages of 2: the keyset pages too
                        response = getattr(apis, name).get(TICKETS, **params)
                        assert response.status_code == 200
                        pages += numbers(response)
                        link = response.get("Link")
                        if not link:
                            break
                        params = {
                            k: v[0] for k, v in parse_qs(urlsplit(link[1 : link.index(">")]).query).items()
                        }
                    found[name, q, ordering] = pages
        return found

    def walked(self, apis: Apis, monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str, str], list[str]]:
        with monkeypatch.context() as walking:
            walking.setattr(search_selectors, "COMMON_SHARE", -1.0)
            return self.found(apis)

    @pytest.mark.parametrize("plan", PLANS)
    def test_plan(
        self, plan: str, apis: Apis, tickets: list[Ticket], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        walked = self.walked(apis, monkeypatch)
        assert walked["agent", "refund node", "created_at"] == [
            tickets[0].display_number,
            tickets[2].display_number,
        ]
        assert walked["alice", "refund node", "created_at"] == [tickets[2].display_number]  # not by the note
        assert walked["agent", '"stays down"', "created_at"] == [t.display_number for t in tickets[:4:2]] + [
            tickets[3].display_number
        ]
        assert not any(walked[key] for key in walked if key[0] == "provider_b")
        for name, value in self.PLANS[plan].items():
            monkeypatch.setattr(search_selectors, name, value)
        assert self.found(apis) == walked

    def test_the_prefix_left_out_of_the_probe(
        self, apis: Apis, tickets: list[Ticket], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The last word, read as a prefix, is the commoner and the rest rare: the probe leaves it out, and its
        # candidates are checked against the whole query.
        walked = self.walked(apis, monkeypatch)
        probes = []

        def share(column: str, tsquery_text: str) -> float:
            probes.append(tsquery_text)
            return 0.5 if ":*" in tsquery_text else 0.001

        monkeypatch.setattr(search_selectors, "_share_matching", share)
        assert self.found(apis) == walked
        assert "'refund'" in probes  # "node refund": the probe without its prefix group
        assert "'node'" in probes  # "refund node"


class TestPhrasesAreReadByTheirWordPairs:
    """The staff document holds a lexeme for each pair of adjacent words (migration 0023); where the index is
    read for a phrase, it reads the phrase's pairs (`phrase_pairs`), once every document holds them. A
    phrase is then found exactly where checking its words' positions finds it."""

    PHRASES = (
        '"node stays"',
        '"node stays offline"',
        '"monday reboot"',  # the end of a comment and the start of the next, appended after it: no phrase
        '"node stays" refund',
        '"node stays" or "lost lease"',
        '-"node stays" refund',
        '"the node, it stays"',  # stop words between: no pair
        '"monday"',
    )

    @pytest.fixture
    def tickets(self, world: World, refund_note: Ticket) -> list[Ticket]:
        node = world.open_ticket(
            subject="Node refund", description="The node stays offline; a refund is fair."
        )
        services.comment_add(actor=world.alice, ticket_id=node.id, body="It stays offline since Monday")
        services.comment_add(actor=world.alice, ticket_id=node.id, body="Reboot did nothing")
        lease = world.open_ticket(subject="Refund for the lost lease", description="Lost lease yesterday")
        return [refund_note, node, lease, world.open_ticket(subject="Stays, node", description="Offline")]

    def found(self, apis: Apis, monkeypatch: pytest.MonkeyPatch, *, by_index: bool) -> dict:
        with monkeypatch.context() as plan:
            # Read from the index as a list of matches, or walked ticket by ticket with each document checked.
            plan.setattr(search_selectors, "COMMON_SHARE", 2.0 if by_index else -1.0)
            return {
                (name, q): numbers(getattr(apis, name).get(TICKETS, q=q, ordering="created_at"))
                for name in ("agent", "provider_a")
                for q in self.PHRASES
            }

    def test_a_phrase_is_found_by_its_pairs_as_by_its_words_positions(
        self, apis: Apis, tickets: list[Ticket], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert search_selectors.phrase_pairs_ready()  # a new installation: every document has them
        walked = self.found(apis, monkeypatch, by_index=False)
        node = tickets[1].display_number
        assert walked["agent", '"node stays"'] == [tickets[0].display_number, node]  # the internal note too
        assert walked["provider_a", '"node stays offline"'] == [node]
        assert walked["agent", '"monday reboot"'] == []
        assert walked["agent", '"monday"'] == [node]
        assert walked["agent", '"node stays" or "lost lease"'] == [t.display_number for t in tickets[:3]]
        assert walked["agent", '-"node stays" refund'] == [tickets[2].display_number]
        pairs = search_selectors.phrase_pairs(search_selectors.parse_search('"node stays offline"'))
        assert pairs is not None
        assert pairs.count("&") == 1  # node-stays, stays-offline
        for no_pairs in ('-"node stays" refund', '"node stays" or "lost lease"', '"the node, it stays"'):
            assert search_selectors.phrase_pairs(search_selectors.parse_search(no_pairs)) is None, no_pairs
        assert self.found(apis, monkeypatch, by_index=True) == walked

    def test_pairs_are_relied_on_only_once_every_document_holds_them(
        self, world: World, apis: Apis, tickets: list[Ticket], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(search_selectors, "COMMON_SHARE", 2.0)
        node = tickets[1].display_number
        # A document written before the pairs existed: its own pairs taken out.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tickets_ticketsearch SET staff_doc = ts_delete(staff_doc, "
                "ARRAY(SELECT lexeme FROM unnest(staff_doc) WHERE lexeme LIKE ' %%')) WHERE ticket_id = %s",
                [tickets[1].id],
            )
        assert numbers(apis.agent.get(TICKETS, q='"node stays offline"')) == []  # the index read the pairs
        SearchIndexState.objects.update(phrase_pairs=False)  # as the migration leaves an existing index
        monkeypatch.setitem(search_selectors.PAIRS_KNOWN_COMPLETE, "staff_doc", value=False)
        assert numbers(apis.agent.get(TICKETS, q='"node stays offline"')) == [node]
        # What `make run` does at start: only missing documents, which here means every one.
        output = io.StringIO()
        call_command("search_reindex", "--missing", stdout=output)
        assert f"{len(tickets)} of {len(tickets)} tickets" in output.getvalue()
        assert search_selectors.phrase_pairs_ready()
        output = io.StringIO()
        call_command("search_reindex", "--missing", stdout=output)  # from now on, only the missing ones
        assert "Search index: 0 tickets written" in output.getvalue()
        assert search_selectors.phrase_pairs(search_selectors.parse_search('"node stays offline"'))
        assert numbers(apis.agent.get(TICKETS, q='"node stays offline"')) == [node]

    def test_any_phrase_of_the_corpus_words_finds_what_its_words_positions_find(
        self, world: World, apis: Apis
    ) -> None:
        words = ["node", "lease", "restart", "timeout", "gateway", "disk", "the", "it"]  # two stop words
        shuffled = random.Random(27)
        for n in range(8):  # texts of the same words in different orders, comments appended after
            order = shuffled.sample(words, len(words))
            ticket = world.open_ticket(subject=" ".join(order[:3]), description=" ".join(order[3:]))
            services.comment_add(
                actor=world.alice, ticket_id=ticket.id, body=" ".join(order[::-1][: n % 4 + 2])
            )

        def found(q: str, common_share: float) -> list[str]:
            saved, search_selectors.COMMON_SHARE = search_selectors.COMMON_SHARE, common_share
            try:
                return numbers(apis.agent.get(TICKETS, q=q, ordering="created_at"))
            finally:
                search_selectors.COMMON_SHARE = saved

        @given(st.lists(st.sampled_from(words), min_size=2, max_size=4), st.booleans())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def phrase_found_alike(phrase: list[str], with_word: bool) -> None:
            q = f'"{" ".join(phrase)}"' + (" disk" if with_word else "")
            assert found(q, 2.0) == found(q, -1.0), q

        phrase_found_alike()

    def test_a_pair_is_no_word_anyone_can_search_for(self, apis: Apis, tickets: list[Ticket]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT lexeme FROM tickets_ticketsearch, unnest(staff_doc) WHERE ticket_id = %s "
                "AND lexeme LIKE ' %%' LIMIT 1",
                [tickets[1].id],
            )
            (pair,) = cursor.fetchone()
        for api in (apis.agent, apis.alice):
            assert numbers(api.get(TICKETS, q=pair.strip())) == []
            assert numbers(api.get(TICKETS, q=f'"{pair}"')) == []


class TestAProvidersWalkByItsOwnIndex:
    """A provider's walk in the order of last change reads `ticket_provider_updated_idx` (migration 0019) at
    scale; on a test database PostgreSQL sorts instead. Forced onto it here (no sequential scan, no bitmap,
    no sort): the same pages, tickets changed at the same instant in the order of their ids as the keyset
    pages read them."""

    FORCED = ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort")

    def pages(self, apis: Apis, ordering: str) -> list[str]:
        found, params = [], {"q": "refund", "ordering": ordering, "limit": "2"}
        while True:
            response = apis.provider_a.get(TICKETS, **params)
            assert response.status_code == 200
            found += numbers(response)
            link = response.get("Link")
            if not link:
                return found
            params = {k: v[0] for k, v in parse_qs(urlsplit(link[1 : link.index(">")]).query).items()}

    def test_same_pages(
        self, world: World, apis: Apis, refund_note: Ticket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(search_selectors, "COMMON_SHARE", -1.0)  # a common word: the walk
        tickets = [world.open_ticket(subject=f"Refund {n}") for n in range(5)]
        world.open_ticket(actor=world.bob, subject="Refund elsewhere")  # provider B's
        Ticket.objects.filter(pk__in=[t.pk for t in tickets[1:4]]).update(updated_at=tickets[0].updated_at)
        expected = {ordering: self.pages(apis, ordering) for ordering in ("-updated_at", "relevance")}
        assert len(expected["-updated_at"]) == 6
        assert sorted(expected["relevance"]) == sorted(expected["-updated_at"])
        listed = ticket_list(provider_party(world.provider_a), TicketFilters(q="refund"))
        page_sql, page_params = listed.order_by(F("updated_at").desc(), "-id")[:3].query.sql_with_params()
        with connection.cursor() as cursor:
            for setting in self.FORCED:
                cursor.execute(f"SET {setting} = off")
            try:
                cursor.execute(f"EXPLAIN {page_sql}", page_params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                forced = {ordering: self.pages(apis, ordering) for ordering in expected}
            finally:
                for setting in self.FORCED:
                    cursor.execute(f"RESET {setting}")
        assert "ticket_provider_updated_idx" in plan, plan
        assert forced == expected


class TestConsistency:
    def test_a_comment_is_found_in_the_transaction_that_writes_it(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        with transaction.atomic():
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body="zebrafish mismatch")
            assert numbers(apis.alice.get(TICKETS, q="zebrafish")) == [ticket.display_number]
        rolled_back = world.open_ticket()

        def comment_then_fail() -> None:
            with transaction.atomic():
                services.comment_add(actor=world.alice, ticket_id=rolled_back.id, body="quagga")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            comment_then_fail()
        assert numbers(apis.alice.get(TICKETS, q="quagga")) == []

    def test_renames_are_searchable_at_once(self, world: World, apis: Apis) -> None:
        ticket = world.open_ticket()
        provider_services.provider_update(
            provider=world.provider_a,
            name="Borealis Hosting",
            api_endpoint=world.provider_a.api_endpoint,
            envelope_public_key=world.provider_a.envelope_public_key,
        )
        provider_services.deployment_rename(deployment=world.alice_deployment, name="checkout-api")
        assert numbers(apis.agent.get(TICKETS, q="Borealis")) == [ticket.display_number]
        assert numbers(apis.agent.get(TICKETS, q='"Provider A"')) == []
        assert numbers(apis.alice.get(TICKETS, q="checkout-api")) == [ticket.display_number]

    def test_a_ticket_full_of_distinct_words_still_takes_comments(self, world: World, apis: Apis) -> None:
        # PostgreSQL refuses a tsvector over 1 MB: the documents are bounded, so writes never fail on it.
        ticket = world.open_ticket()
        for round_ in range(12):
            body = " ".join(f"w{round_}x{n:05d}hexword" for n in range(1200))
            services.comment_add(actor=world.alice, ticket_id=ticket.id, body=body[:20_000])
        assert numbers(apis.alice.get(TICKETS, q="w11x00001hexword")) == [ticket.display_number]

    def test_one_ticket_and_a_batch_get_the_same_documents(self, world: World, refund_note: Ticket) -> None:
        # One ticket's documents are written by a prepared statement (`id = $1`, its generic plan after five
        # runs), several tickets' by another (`= ANY(...)`): both must write the same thing.
        other = world.open_ticket(subject="Disk full on the node", description="<none> left on /var")
        services.comment_add(actor=world.alice, ticket_id=other.id, body="Still full; checkout-api is down")

        def documents() -> dict[object, tuple[str, str]]:
            rows = TicketSearch.objects.filter(ticket__in=[refund_note, other])
            return {row.ticket_id: (str(row.public_doc), str(row.staff_doc)) for row in rows}

        # (A comment appended to a document places its words after the rest: compare whole rewrites.)
        assert search_index.search_documents_write([refund_note.id, other.id]) == 2
        written = documents()
        assert len(written) == 2
        TicketSearch.objects.all().delete()
        for _ in range(7):
            assert search_index.search_documents_write([other.id]) == 1
            assert search_index.search_documents_write([refund_note.id]) == 1
        assert documents() == written

    def test_beat_merges_the_index_s_new_entries_and_they_are_still_found(
        self, world: World, apis: Apis, settings
    ) -> None:
        ticket = world.open_ticket(subject="Quokka migration", description="The zanzibar node")
        # A write's words wait in the GIN index's pending list until beat's task merges them.
        assert search_pending_merge_task() > 0
        assert search_pending_merge_task() == 0
        entry = settings.CELERY_BEAT_SCHEDULE["search-pending-merge"]
        assert entry["task"] == search_pending_merge_task.name
        with connection.cursor() as cursor:  # found through the index, where the merge put them
            cursor.execute("SET LOCAL enable_seqscan = off")
        assert numbers(apis.agent.get(TICKETS, q="zanzibar quokka")) == [ticket.display_number]
        assert numbers(apis.provider_a.get(TICKETS, q='"quokka migration"')) == [ticket.display_number]

    def test_autovacuum_keeps_the_ticket_table_visible_for_the_walks(self) -> None:
        # Walks of `ticket_updated_idx` fetch the row of every ticket changed since the last vacuum
        # (migration 0022): the table is vacuumed after 0.5 % of it changed, not 20 %.
        with connection.cursor() as cursor:
            cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'tickets_ticket'::regclass")
            (options,) = cursor.fetchone()
        assert set(options or []) >= {
            "autovacuum_vacuum_scale_factor=0.005",
            "autovacuum_vacuum_insert_scale_factor=0.005",
        }

    def test_the_rebuild_command_restores_a_lost_index(self, world: World, apis: Apis) -> None:
        tickets = [world.open_ticket(subject=f"Lost index {n}") for n in range(3)]
        TicketSearch.objects.all().delete()
        assert numbers(apis.alice.get(TICKETS, q="lost index")) == []
        output = io.StringIO()
        call_command("search_reindex", "--missing", "--batch-size", "2", stdout=output)
        assert "2 of 3 tickets" in output.getvalue()
        assert "3 of 3 tickets" in output.getvalue()
        assert set(numbers(apis.alice.get(TICKETS, q="lost index"))) == {t.display_number for t in tickets}

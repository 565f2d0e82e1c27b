"""What the support console's work page reads besides the ticket's detail, in one statement.

The agents to assign to, the macros to apply, the customer by name, the deployments to link and the previous
and next ticket are five small reads; as five statements they were five round trips to PostgreSQL, each a
wait for another process, which on a busy machine cost more than the reads. Here they are one statement (each
read a subquery whose rows come back as an array of JSON objects), compiled once per kind of party
(core.statements). Each read is its module's own query (`support_agents_query`, `macros_usable_by`,
`identity_query`, `linkable_query`, `neighbours_query`), so the rules stay where they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import QuerySet
from django.db.models.functions import JSONObject

from core.parties import Party, party_in_slots, scope_slots
from core.statements import StatementCache
from tickets.models import Ticket
from tickets.selectors.console import support_agents_query
from tickets.selectors.macros import MacroName, macro_names_of, macros_usable_by
from tickets.selectors.navigation import neighbours_of, neighbours_query
from tickets.selectors.people import PERSON_FIELDS, Person, identity_query, person_of
from tickets.selectors.portal import LINKABLE_LIMIT, LinkableDeployment, linkable_of, linkable_query
from tickets.selectors.rows import TicketDetail


@dataclass(frozen=True)
class WorkPageReads:
    agents: list[tuple[int, str]]  # (user id, username), as `support_agents`
    macros: list[MacroName]  # as `macro_names`
    customer: Person  # as `people_by_address`
    linkable: list[LinkableDeployment]  # as `linkable_deployments`
    neighbours: tuple[uuid.UUID | None, uuid.UUID | None]  # the previous and next ticket in support's queue


_READS = StatementCache(size=8)


def _listed(queryset: QuerySet[Any, Any], *fields: str) -> ArraySubquery:
    return ArraySubquery(queryset.values(json=JSONObject(**{field: field for field in fields})))


def work_page_reads(party: Party, detail: TicketDetail) -> WorkPageReads:
    """The work page's reads for support (`party`) on the ticket of `detail`, in one statement."""
    shape, values = scope_slots(party)
    row = detail.row

    def build(slots: Mapping[str, Any]) -> QuerySet[Any, Any]:
        scoped = party_in_slots(party, slots)
        linkable = linkable_query(scoped, slots["owner"], slots["lease"]).values(
            json=JSONObject(pk="pk", lease_id="lease_id", name="name")
        )[:LINKABLE_LIMIT]
        return (
            Ticket.objects.filter(pk=slots["ticket"])
            .order_by()
            .values(
                agents=_listed(support_agents_query(), "pk", "username"),
                macros=_listed(macros_usable_by(scoped), "pk", "name", "is_internal"),
                customer=_listed(identity_query(slots["owner"]), *PERSON_FIELDS),
                linkable=ArraySubquery(linkable),
                neighbours=_listed(neighbours_query(scoped, slots["number"]), "pk", "number"),
            )
        )

    found = _READS.rows(
        shape,
        build,
        {
            **values,
            "ticket": row["id"],
            "owner": row["customer_address"],
            "lease": row["deployment_lease_id"],
            "number": row["number"],
        },
    )
    lists: Mapping[str, Any] = found[0] if found else {}
    customers = lists.get("customer") or []
    return WorkPageReads(
        agents=[(agent["pk"], agent["username"]) for agent in lists.get("agents") or []],
        macros=macro_names_of(lists.get("macros") or []),
        customer=person_of(row["customer_address"], customers[0] if customers else None),
        linkable=linkable_of(lists.get("linkable") or [], detail),
        neighbours=neighbours_of(lists.get("neighbours") or [], row["number"]),
    )

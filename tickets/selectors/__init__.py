"""Every read a party makes of tickets, threads, attachments and history, by concern:

- `visibility`: who may see which ticket (the single source of it), and the reads scoped by it;
- `rows`: ticket rows as every surface lists and shows them (the list, one ticket's detail);
- `streams`: what the real-time layer reads (touched tickets, parties, sequence positions, events by id);
- `search`: what people type, read as a web search over the index, and the results' snippets;
- `sla`: the SLA filters, breach totals and the attainment report;
- `portal` and `console`: what those surfaces read besides the API's reads.

Callers import from here.
"""

from tickets.selectors.console import (
    DUE_SOON,
    QUEUE_LIMIT,
    URGENCY_LABELS,
    Dashboard,
    Median,
    ProviderWorkload,
    QueueFilters,
    console_dashboard,
    escalation_queue,
    provider_choices,
    support_agents,
    ticket_events_all,
)
from tickets.selectors.portal import (
    linkable_deployments,
    ticket_id_for_reference,
    uploads_of,
)
from tickets.selectors.rows import (
    HISTORY_EXCLUDED_KINDS,
    PRIORITY_RANK,
    TICKET_ROW_FIELDS,
    TICKET_ROW_RELATED,
    VISIBLE_UPDATED_AT,
    TicketDetail,
    TicketFilters,
    ticket_detail,
    ticket_list,
    ticket_sla,
    updated_at_column,
)
from tickets.selectors.search import RANK as SEARCH_RANK
from tickets.selectors.search import SNIPPET as SEARCH_SNIPPET
from tickets.selectors.search import (
    TicketSearchQuery,
    parse_search,
    rows_with_snippets,
    search_snippets,
    ticket_search,
)
from tickets.selectors.sla import (
    SLA_FILTERS,
    SLA_REPORT_DEFAULT_DAYS,
    ProviderAttainment,
    SlaBreachTotals,
    SlaReport,
    TargetAttainment,
    sla_at_risk,
    sla_breach_totals,
    sla_breached,
    sla_report,
    sla_targets,
)
from tickets.selectors.streams import (
    TOUCHED_TICKETS_MAX,
    TicketParties,
    event_related,
    events_by_ids,
    last_seqs,
    last_visible_seq,
    ticket_parties,
    tickets_for_visibility,
    tickets_parties,
    tickets_touched_since,
    uuids_of,
)
from tickets.selectors.visibility import (
    attachment_get_for_download,
    attachments_visible_to,
    comments_visible_to,
    events_visible_to,
    parse_ticket_id,
    party_may_write_a_ticket,
    ticket_get,
    ticket_is_visible_to,
    tickets_visible_to,
    visible_events_query,
)

__all__ = [
    "DUE_SOON",
    "HISTORY_EXCLUDED_KINDS",
    "PRIORITY_RANK",
    "QUEUE_LIMIT",
    "SEARCH_RANK",
    "SEARCH_SNIPPET",
    "SLA_FILTERS",
    "SLA_REPORT_DEFAULT_DAYS",
    "TICKET_ROW_FIELDS",
    "TICKET_ROW_RELATED",
    "TOUCHED_TICKETS_MAX",
    "URGENCY_LABELS",
    "VISIBLE_UPDATED_AT",
    "Dashboard",
    "Median",
    "ProviderAttainment",
    "ProviderWorkload",
    "QueueFilters",
    "SlaBreachTotals",
    "SlaReport",
    "TargetAttainment",
    "TicketDetail",
    "TicketFilters",
    "TicketParties",
    "TicketSearchQuery",
    "attachment_get_for_download",
    "attachments_visible_to",
    "comments_visible_to",
    "console_dashboard",
    "escalation_queue",
    "event_related",
    "events_by_ids",
    "events_visible_to",
    "last_seqs",
    "last_visible_seq",
    "linkable_deployments",
    "parse_search",
    "parse_ticket_id",
    "party_may_write_a_ticket",
    "provider_choices",
    "rows_with_snippets",
    "search_snippets",
    "sla_at_risk",
    "sla_breach_totals",
    "sla_breached",
    "sla_report",
    "sla_targets",
    "support_agents",
    "ticket_detail",
    "ticket_events_all",
    "ticket_get",
    "ticket_id_for_reference",
    "ticket_is_visible_to",
    "ticket_list",
    "ticket_parties",
    "ticket_search",
    "ticket_sla",
    "tickets_for_visibility",
    "tickets_parties",
    "tickets_touched_since",
    "tickets_visible_to",
    "updated_at_column",
    "uploads_of",
    "uuids_of",
    "visible_events_query",
]

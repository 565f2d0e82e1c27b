"""Every read a party makes of tickets, threads, attachments and history, by concern:

- `visibility`: who may see which ticket (the single source of it), and the reads scoped by it;
- `rows`: ticket rows as every surface lists and shows them (the list, one ticket's detail);
- `streams`: what the real-time layer reads (touched tickets, parties, sequence positions, events by id);
- `search`: what people type, read as a web search over the index, and the results' snippets;
- `sla`: the SLA filters, breach totals and the attainment report;
- `portal` and `console`: what those surfaces read besides the API's reads (`workpage`: the console's work
  page's, in one statement);
- `macros`: the macros a party may use or manage, and what their placeholders stand for;
- `satisfaction`: a ticket's rating, and ratings per provider and period.

Callers import from here.
"""

from core.parties import party_in_slots, scope_slots
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
)
from tickets.selectors.macros import (
    PlaceholderValues,
    macro_get,
    macro_list,
    macro_names,
    macros_manageable_by,
    macros_usable_by,
    party_uses_macros,
    placeholder_values,
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
from tickets.selectors.satisfaction import (
    ProviderSatisfaction,
    Satisfaction,
    SatisfactionBoardRow,
    satisfaction_dashboard,
    satisfaction_of,
    satisfaction_of_ticket,
    satisfaction_panel,
    satisfaction_per_provider,
    ticket_rateable,
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
from tickets.selectors.workpage import WorkPageReads, work_page_reads

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
    "PlaceholderValues",
    "ProviderAttainment",
    "ProviderSatisfaction",
    "ProviderWorkload",
    "QueueFilters",
    "Satisfaction",
    "SatisfactionBoardRow",
    "SlaBreachTotals",
    "SlaReport",
    "TargetAttainment",
    "TicketDetail",
    "TicketFilters",
    "TicketParties",
    "TicketSearchQuery",
    "WorkPageReads",
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
    "macro_get",
    "macro_list",
    "macro_names",
    "macros_manageable_by",
    "macros_usable_by",
    "parse_search",
    "parse_ticket_id",
    "party_in_slots",
    "party_may_write_a_ticket",
    "party_uses_macros",
    "placeholder_values",
    "provider_choices",
    "rows_with_snippets",
    "satisfaction_dashboard",
    "satisfaction_of",
    "satisfaction_of_ticket",
    "satisfaction_panel",
    "satisfaction_per_provider",
    "scope_slots",
    "search_snippets",
    "sla_at_risk",
    "sla_breach_totals",
    "sla_breached",
    "sla_report",
    "sla_targets",
    "support_agents",
    "ticket_detail",
    "ticket_get",
    "ticket_id_for_reference",
    "ticket_is_visible_to",
    "ticket_list",
    "ticket_parties",
    "ticket_rateable",
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
    "work_page_reads",
]

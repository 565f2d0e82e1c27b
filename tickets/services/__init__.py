"""Every write to a ticket. One path for each change.

Each service runs in one transaction: it locks the ticket row, checks the actor's role (a ticket the
actor cannot see is NotFound), applies the change, appends a ticket event with the next per-ticket
sequence number (`recording.record_event`), which queues the chain outbox row in the same transaction and
schedules the after-commit hooks (real-time broadcast, outbox drain). Nothing else changes a ticket's
status or assignee.

One module per entity, as Zulip's `actions/`; callers import the services from here.
"""

from tickets.services.assignments import ticket_assign, ticket_escalate
from tickets.services.attachments import attachment_attach, attachment_upload, attachments_expire_unreferenced
from tickets.services.comments import CommentResult, comment_add
from tickets.services.idle import tickets_idle_sweep
from tickets.services.links import deployment_link, deployment_unlink
from tickets.services.logs import (
    LOGS_REQUEST_COOLDOWN_SECONDS,
    deployment_logs_fetch,
    deployment_logs_request,
    logs_fetch_queue,
    logs_requests_sweep,
)
from tickets.services.macros import PLACEHOLDERS, macro_apply, macro_create, macro_delete, macro_update
from tickets.services.satisfaction import (
    SATISFACTION_LINK_DAYS,
    satisfaction_link_read,
    satisfaction_rate,
    satisfaction_rate_by_link,
    satisfaction_token,
)
from tickets.services.sla import SweepResult, sla_policies_ensure, sla_sweep
from tickets.services.tickets import (
    ticket_create,
    ticket_edit,
    ticket_priority_set,
    ticket_transition,
    ticket_update,
)

__all__ = [
    "LOGS_REQUEST_COOLDOWN_SECONDS",
    "PLACEHOLDERS",
    "SATISFACTION_LINK_DAYS",
    "CommentResult",
    "SweepResult",
    "attachment_attach",
    "attachment_upload",
    "attachments_expire_unreferenced",
    "comment_add",
    "deployment_link",
    "deployment_logs_fetch",
    "deployment_logs_request",
    "deployment_unlink",
    "logs_fetch_queue",
    "logs_requests_sweep",
    "macro_apply",
    "macro_create",
    "macro_delete",
    "macro_update",
    "satisfaction_link_read",
    "satisfaction_rate",
    "satisfaction_rate_by_link",
    "satisfaction_token",
    "sla_policies_ensure",
    "sla_sweep",
    "ticket_assign",
    "ticket_create",
    "ticket_edit",
    "ticket_escalate",
    "ticket_priority_set",
    "ticket_transition",
    "ticket_update",
    "tickets_idle_sweep",
]

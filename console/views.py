"""The support console's own pages: the escalation queue, the page to work one ticket, the dashboard.

Each action is one service call (it records its event, is broadcast and anchored) and one entry in the
admin's action log. Reads are selectors; tickets are described by the API's output and the presenter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.backends.utils import csrf_input
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from chain.selectors import event_receipts
from chain.verification import verify_chain
from console.charts import bar_chart
from console.forms import AssignForm, EditForm, PriorityForm
from console.macro_forms import MacroApplyForm, apply_macro
from console.queue import queue_lines, queue_rows_html
from console.timeline import timeline_html, timeline_item
from core.errors import ApplicationError, NotFound
from core.parties import Party
from providers.selectors import SupportAccess, support_access
from tickets import humanise, selectors, services, states
from tickets.api import serializers as io
from tickets.models import Ticket
from tickets.portal.forms import LinkForm, ReplyForm, StatusForm
from tickets.presenter import Audience, present_events
from tickets.selectors import reports
from tickets.selectors.collisions import LaterReply, replies_since_seen
from tickets.selectors.people import people_by_address

WORK_PERMISSION = "tickets.work_ticket"


_CONSOLE_ACCESS = "_ve_console_access"


def _console_access(request: HttpRequest) -> SupportAccess:
    """Who the request's user acts as in the console and whether they may work tickets, worked out once per
    request, in one query (the admin site asks for its permission twice, and each page again)."""
    if not hasattr(request, _CONSOLE_ACCESS):
        setattr(request, _CONSOLE_ACCESS, support_access(request.user, WORK_PERMISSION))
    return cast(SupportAccess, getattr(request, _CONSOLE_ACCESS))


def console_party(request: HttpRequest) -> Party | None:
    """The support party the request's user acts as, or None for anyone else."""
    return _console_access(request).party


def support_party(request: HttpRequest) -> Party:
    """The agent acting (the console's site lets in support staff only; working needs the permission)."""
    party = console_party(request)
    if party is None:
        raise PermissionDenied
    return party


def may_work(request: HttpRequest) -> bool:
    """Whether the console's user may work tickets (`tickets.work_ticket`), not only look at them."""
    return _console_access(request).permitted


def _require_work(request: HttpRequest) -> None:
    if not may_work(request):
        raise PermissionDenied


def log_console_action(request: HttpRequest, ticket_id: object, message: str) -> None:
    """The admin's action log: who did what to which ticket, beside the ticket's own events."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=Ticket.objects.filter(pk=selectors.parse_ticket_id(ticket_id)).only(
            "id", "number", "subject"
        ),
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


# ---------------------------------------------------------------------------------------------------------
# The queue and the dashboard.


def queue(request: HttpRequest, site: AdminSite) -> HttpResponse:
    party = support_party(request)
    filters = selectors.QueueFilters.from_query(request.GET, agent_id=request.user.pk)
    now = timezone.now()
    rows = selectors.escalation_queue(party, filters, now=now)
    people = people_by_address([row.customer_address for row in rows])  # shown by name
    context = {
        **site.each_context(request),
        "title": "Escalation queue",
        "rows": rows,
        "rows_html": queue_rows_html(queue_lines(rows, people, now=now)),
        "filters": filters,
        "providers": selectors.provider_choices(),
        "priorities": Ticket.Priority.choices,
    }
    return TemplateResponse(request, "admin/console/queue.html", context)


def dashboard(request: HttpRequest, site: AdminSite) -> HttpResponse:
    party = support_party(request)
    now = timezone.now()
    backlog = reports.backlog_per_day(party, now=now)
    escalations = reports.escalations_per_day(party, now=now)
    context = {
        **site.each_context(request),
        "title": "SLA and workload",
        "board": selectors.console_dashboard(party),
        "backlog": backlog,
        "backlog_chart": bar_chart(
            "Open tickets at the end of each day", [(d.day, d.count) for d in backlog]
        ),
        "escalations": escalations,
        "escalations_chart": bar_chart("Escalations per day", [(d.day, d.count) for d in escalations]),
        "attainment": reports.attainment_per_provider_per_week(party, now=now),
        "satisfaction": selectors.satisfaction_dashboard(party, now=now),
    }
    return TemplateResponse(request, "admin/console/dashboard.html", context)


# ---------------------------------------------------------------------------------------------------------
# Working one ticket.


def _forms(ticket: dict[str, Any], agents: list[tuple[int, str]], **bound: Any) -> dict[str, Any]:
    return {
        "reply_form": bound.get("reply_form") or ReplyForm(),
        "assign_form": bound.get("assign_form") or AssignForm(agents=agents),
        "priority_form": bound.get("priority_form") or PriorityForm(initial={"priority": ticket["priority"]}),
        "edit_form": bound.get("edit_form")
        or EditForm(
            initial={
                "subject": ticket["subject"],
                "description": ticket["description"],
                "category": ticket["category"],
            }
        ),
    }


def ticket_page(
    request: HttpRequest, site: AdminSite, ticket_id: object, *, status: int = 200, **bound: Any
) -> HttpResponse:
    party = support_party(request)
    try:
        detail = selectors.ticket_detail(party, ticket_id, timeline=True)
    except NotFound as error:
        raise Http404(error.message) from error
    # The header's facts: the thread and files are the timeline's, so not presented a second time here.
    ticket = {
        **io.TicketOutput(detail.row, context={"audience": Audience.STAFF}).data,
        "related_deployments": io.present_links(detail.links),
    }
    receipts = event_receipts(detail.row["id"])
    timeline = timeline_html(
        timeline_item(event, receipts.get(event["seq"]))
        for event in present_events(detail.history, Audience.STAFF, detail.related)
    )
    reads = selectors.work_page_reads(party, detail)
    open_ticket = ticket["status"] != Ticket.Status.CLOSED
    context = {
        **site.each_context(request),
        "title": f"{ticket['number']} {ticket['subject']}",
        "ticket": ticket,
        "customer_address": detail.row["customer_address"],
        "timeline": timeline,
        "moves": [target.value for target in states.allowed_targets(ticket["status"], states.Role.SUPPORT)]
        if open_ticket
        else [],
        "open_ticket": open_ticket,
        "can_work": may_work(request),
        "linkable": reads.linkable if open_ticket else [],
        "mine": detail.row["assigned_to_username"] == request.user.get_username(),
        "verification": bound.pop("verification", None),
        "later_replies": bound.pop("later_replies", None),
        "last_seq": detail.last_seq,
        "neighbours": _neighbour_urls(*reads.neighbours),
        "macro_form": bound.get("macro_form") or MacroApplyForm(macros=reads.macros),
        "me": party.label,
        "customer": reads.customer,
        "urls": _action_urls(ticket["id"]),
        "csrf_input": csrf_input(request),
        **_forms(ticket, reads.agents, **bound),
    }
    return TemplateResponse(request, "admin/console/ticket.html", context, status=status)


def _action_urls(ticket_id: object) -> dict[str, str]:
    """Where each of the page's forms posts (reversed once: only the action's name differs)."""
    pattern = reverse("admin:tickets_ticket_act", args=[ticket_id, "verify"]).replace("/verify/", "/{}/")
    return {action: pattern.format(action) for action in (*ACTIONS, "verify")}


Action = Callable[[HttpRequest, Party, Any], tuple[str | None, dict[str, Any]]]


def _reply(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        return None, {"reply_form": form}
    later = _replies_since_opened(request, party, ticket_id)
    if later:  # as Zendesk does: someone answered while this one was being written; read it first
        return None, {"reply_form": form, "later_replies": later}
    attachment_ids = [
        str(services.attachment_upload(actor=party, upload=upload).id)
        for upload in form.cleaned_data["files"]
    ]
    internal = form.cleaned_data["is_internal"]
    services.comment_add(
        actor=party,
        ticket_id=ticket_id,
        body=form.cleaned_data["content"],
        is_internal=internal,
        attachment_ids=attachment_ids,
    )
    return ("Added an internal note." if internal else "Replied to the customer."), {}


def _neighbour_urls(before: object, after: object) -> dict[str, str]:
    """The work pages of the previous and next open tickets (the `k` and `j` keys)."""
    return {
        name: reverse("admin:tickets_ticket_change", args=[ticket_id])
        for name, ticket_id in (("previous", before), ("next", after))
        if ticket_id is not None
    }


def _replies_since_opened(request: HttpRequest, party: Party, ticket_id: Any) -> list[LaterReply]:
    """Replies by others since the page was opened, unless the agent chose "Send anyway"."""
    if request.POST.get("send_anyway"):
        return []
    return replies_since_seen(party, ticket_id, request.POST.get("seen_seq"))


def _take(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    services.ticket_assign(
        actor=party,
        ticket_id=ticket_id,
        assignee_kind="support",
        assignee_user_id=request.user.pk,
        reason="Taken",
    )
    return "Took the ticket.", {}


def _assign(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = AssignForm(request.POST, agents=selectors.support_agents())
    if not form.is_valid():
        return None, {"assign_form": form}
    kind, user_id = form.target()
    services.ticket_assign(
        actor=party,
        ticket_id=ticket_id,
        assignee_kind=kind,
        assignee_user_id=user_id,
        reason=form.cleaned_data["reason"],
    )
    chosen = dict(getattr(form.fields["assignee"], "choices", ())).get(form.cleaned_data["assignee"])
    return f"Assigned the ticket ({chosen}).", {}


def _hand_back(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    reason = request.POST.get("reason", "").strip() or "Handed back to the provider"
    services.ticket_assign(actor=party, ticket_id=ticket_id, assignee_kind="provider", reason=reason)
    return "Handed the ticket back to the provider.", {}


def _move(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = StatusForm(request.POST)
    if not form.is_valid():
        raise ApplicationError("Choose a status.")
    services.ticket_transition(actor=party, ticket_id=ticket_id, status=form.cleaned_data["status"])
    return f"Moved the ticket to {humanise.status_phrase(form.cleaned_data['status'])}.", {}


def _priority(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = PriorityForm(request.POST)
    if not form.is_valid():
        return None, {"priority_form": form}
    services.ticket_priority_set(actor=party, ticket_id=ticket_id, priority=form.cleaned_data["priority"])
    return f"Set the priority to {humanise.priority_phrase(form.cleaned_data['priority'])}.", {}


def _link(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = LinkForm(request.POST)
    if not form.is_valid():
        raise ApplicationError("Choose a deployment.")
    services.deployment_link(
        actor=party, ticket_id=ticket_id, deployment_id=form.cleaned_data["deployment_id"]
    )
    return f"Linked {form.cleaned_data['deployment_id']}.", {}


def _unlink(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = LinkForm(request.POST)
    if not form.is_valid():
        raise ApplicationError("Choose a deployment.")
    services.deployment_unlink(
        actor=party, ticket_id=ticket_id, deployment_id=form.cleaned_data["deployment_id"]
    )
    return f"Unlinked {form.cleaned_data['deployment_id']}.", {}


def _logs(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    del request
    services.deployment_logs_request(actor=party, ticket_id=ticket_id)
    return "Asked the provider for the deployment's logs; they arrive as an internal file.", {}


def _edit(request: HttpRequest, party: Party, ticket_id: Any) -> tuple[str | None, dict[str, Any]]:
    form = EditForm(request.POST)
    if not form.is_valid():
        return None, {"edit_form": form}
    services.ticket_edit(actor=party, ticket_id=ticket_id, **form.cleaned_data)
    return "Edited the ticket.", {}


ACTIONS: dict[str, Action] = {
    "reply": _reply,
    "take": _take,
    "assign": _assign,
    "hand_back": _hand_back,
    "move": _move,
    "priority": _priority,
    "link": _link,
    "unlink": _unlink,
    "logs": _logs,
    "edit": _edit,
    "macro": apply_macro,
}


# Actions whose form holds what the agent typed: refused, the page is shown again with it (as Django's own
# change form does). Any other action is answered by a redirect back to the ticket (Post/Redirect/Get), with
# the outcome in a message, so that reloading the page never sends the action again.
KEEPS_WHAT_WAS_TYPED = frozenset({"reply", "edit", "assign", "hand_back"})


def _back_to_ticket(ticket_id: object) -> HttpResponseRedirect:
    """303 See Other: the browser follows with a GET, whatever the method of the request it answers."""
    return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket_id]), status=303)


def ticket_act(request: HttpRequest, site: AdminSite, ticket_id: object, action: str) -> HttpResponse:
    """POST one action on a ticket; back to its page with what happened (or the refusal)."""
    if request.method != "POST":
        return redirect(reverse("admin:tickets_ticket_change", args=[ticket_id]))
    party = support_party(request)
    if action == "verify":  # a report, not a change: shown at once (posting it again only verifies again)
        report = verify_chain(ticket_id=selectors.parse_ticket_id(ticket_id))
        return ticket_page(request, site, ticket_id, verification=report)
    handler = ACTIONS.get(action)
    if handler is None:
        raise Http404("No such action.")
    _require_work(request)
    return _act(request, site, party, ticket_id, action=action, handler=handler)


def _act(
    request: HttpRequest, site: AdminSite, party: Party, ticket_id: object, *, action: str, handler: Action
) -> HttpResponse:
    """Run one action and answer: back to the ticket, or its page again with the form and what went wrong."""
    try:
        done, bound = handler(request, party, ticket_id)
    except ApplicationError as error:
        messages.error(request, error.message)
        if action in KEEPS_WHAT_WAS_TYPED:
            return ticket_page(request, site, ticket_id, status=400)
        return _back_to_ticket(ticket_id)
    if done is None and bound.get("later_replies"):
        messages.warning(request, "Someone replied after you opened this ticket: read it, then send yours.")
        return ticket_page(request, site, ticket_id, status=409, **bound)
    if done is None:  # a form did not validate: shown again with its errors
        messages.error(request, "Check the form below.")
        return ticket_page(request, site, ticket_id, status=400, **bound)
    log_console_action(request, ticket_id, done)
    messages.success(request, done)
    return _back_to_ticket(ticket_id)

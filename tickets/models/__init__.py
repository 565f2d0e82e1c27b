"""Tickets, their threads and attachments, related deployments, assignments, SLA policies and the
append-only event log. No side effects here: every write goes through `tickets.services`."""

from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import MinValueValidator
from django.db import models
from django.dispatch import receiver
from django.utils import timezone

from core.indexes import index_where_set
from core.parties import PartyKind
from tickets import sla, states

TICKET_NUMBER_SEQUENCE = "tickets_ticket_number_seq"

# Bounds on what callers may write: the services enforce them and the API documents them (a lease ID's is
# `providers.models.LEASE_ID_MAX_LENGTH`).
SUBJECT_MAX_LENGTH = 200
TEXT_MAX_LENGTH = 20_000  # a description, a comment
REASON_MAX_LENGTH = 2_000  # why a ticket was escalated, reassigned or moved
MAX_ATTACHMENTS_PER_WRITE = 20
# A ticket's free-form `metadata` object: its JSON size, nesting depth and keys (at every level together).
METADATA_MAX_BYTES = 8_192
METADATA_MAX_DEPTH = 4
METADATA_MAX_KEYS = 64


class NextVal(models.Func):
    """`nextval('<sequence>')`: the ticket number comes from a PostgreSQL sequence at insert time."""

    function = "nextval"
    output_field = models.BigIntegerField()

    def __init__(self, sequence: str) -> None:
        super().__init__(models.Value(sequence))


def optional_user(*, related_name: str = "+") -> models.ForeignKey:
    """A user who may be absent (a wallet party or the system acted instead), kept as NULL when the user
    goes. Not indexed on every row: each such key has its `index_where_set`."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name=related_name,
        db_index=False,
    )


class PartyKindField(models.CharField):
    """Which kind of party did something (customer, provider, support, system)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max_length", 16)
        kwargs.setdefault("choices", [(kind.value, kind.value.title()) for kind in PartyKind])
        super().__init__(*args, **kwargs)


# The tickets still waiting for each SLA threshold, and the column saying when they cross it: the partial
# indexes of the SLA sweep (`Ticket.Meta.indexes`) and its claims (`tickets.services.sla`), which must use
# the same conditions for the planner to use the indexes. A target leaves its indexes once decided (met),
# marked, or — the resolution clock — paused; a late decision (met False) still waits for its breach event.
SLA_WAITING: dict[str, tuple[str, models.Q]] = {
    "fr_warn": (
        "sla_first_response_warn_at",
        models.Q(sla_first_response_warned_at__isnull=True, sla_first_response_met__isnull=True),
    ),
    "fr_breach": (
        "sla_first_response_due",
        models.Q(sla_first_response_breached_at__isnull=True)
        & (models.Q(sla_first_response_met__isnull=True) | models.Q(sla_first_response_met=False)),
    ),
    "res_warn": (
        "sla_resolution_warn_at",
        models.Q(
            sla_resolution_warned_at__isnull=True,
            sla_resolution_met__isnull=True,
            sla_paused_since__isnull=True,
        ),
    ),
    "res_breach": (
        "sla_resolution_due",
        models.Q(sla_resolution_breached_at__isnull=True)
        & (
            models.Q(sla_resolution_met__isnull=True, sla_paused_since__isnull=True)
            | models.Q(sla_resolution_met=False)
        ),
    ),
}

# Tickets a customer opened on a lease they do not own (the partial index `ticket_created_by_address_idx`).
CREATED_ON_ANOTHERS_LEASE = models.Q(created_by_address__gt="") & ~models.Q(
    created_by_address=models.F("customer_address")
)
# Tickets in support's hands and still open: the console's queue (`ticket_support_queue_idx`).
SUPPORT_QUEUE = models.Q(assignee_kind="support") & ~models.Q(status="closed")


class Ticket(models.Model):
    class Category(models.TextChoices):
        TECHNICAL = "technical", "Technical"
        BILLING = "billing", "Billing"
        GENERAL = "general", "General"
        SECURITY = "security", "Security"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        # The same values as tickets.states.Status (the state machine works on plain strings).
        OPEN = states.Status.OPEN.value, "Open"
        IN_PROGRESS = states.Status.IN_PROGRESS.value, "In progress"
        WAITING_CUSTOMER = states.Status.WAITING_CUSTOMER.value, "Waiting for customer"
        RESOLVED = states.Status.RESOLVED.value, "Resolved"
        CLOSED = states.Status.CLOSED.value, "Closed"

    class AssigneeKind(models.TextChoices):
        PROVIDER = "provider", "Provider"
        SUPPORT = "support", "Support"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.BigIntegerField(unique=True, db_default=NextVal(TICKET_NUMBER_SEQUENCE), editable=False)
    deployment = models.ForeignKey("providers.Deployment", on_delete=models.PROTECT, related_name="tickets")
    # Not indexed alone: `ticket_provider_idx` starts with it. Every index here is one more write per
    # ticket update (the SLA sweep updates thousands per batch).
    provider = models.ForeignKey(
        "providers.ProviderAccount", on_delete=models.PROTECT, related_name="tickets", db_index=False
    )
    # The lease owner; denormalised from the deployment (a lease's owner never changes) to scope reads.
    customer_address = models.CharField(max_length=90)
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH)
    description = models.TextField()
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.GENERAL)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    # Indexed where set (`ticket_created_by_idx`): most tickets are created by a wallet, with no user.
    created_by = optional_user()
    created_by_kind = PartyKindField()
    created_by_address = models.CharField(max_length=90, blank=True)
    created_by_label = models.CharField(max_length=150)
    assignee_kind = models.CharField(
        max_length=16, choices=AssigneeKind.choices, default=AssigneeKind.PROVIDER
    )
    # Indexed where set (`ticket_assigned_to_idx`): most tickets sit in a queue, with no one assigned.
    assigned_to = optional_user(related_name="assigned_tickets")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The time of the last change a customer can see (no internal notes): their `updated_at` and ordering.
    public_updated_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # When the status last changed: the idle timers count from it.
    status_changed_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    # A fetch of the deployment's logs was asked for (at creation, escalation or on demand) and has not
    # attached them yet: the queued task can be lost with Redis or a killed worker, and the logs sweep
    # queues it again from here. Cleared by the fetch that attaches them.
    logs_requested_at = models.DateTimeField(null=True, blank=True)
    # The SLA clock (tickets/sla.py), per target: the due time and the 80 % warning time (both counted on
    # the policy's clock from `created_at`), when the sweep wrote the warning and the breach (claim markers:
    # each is set once, in the transaction that writes its event), and whether the target was met (stored
    # when it is decided; None while it runs). The resolution clock pauses: working seconds paused so far,
    # and since when it is paused. `sla_next_due`: the earliest due time of a running target, for ordering.
    # No index: a handful of policies, rarely deleted; every index costs each sweep's ticket writes.
    sla_policy = models.ForeignKey(
        "tickets.SlaPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    sla_first_response_due = models.DateTimeField(null=True, blank=True)
    sla_first_response_warn_at = models.DateTimeField(null=True, blank=True)
    sla_first_response_warned_at = models.DateTimeField(null=True, blank=True)
    sla_first_response_breached_at = models.DateTimeField(null=True, blank=True)
    sla_first_response_met = models.BooleanField(null=True, blank=True)
    sla_resolution_due = models.DateTimeField(null=True, blank=True)
    sla_resolution_warn_at = models.DateTimeField(null=True, blank=True)
    sla_resolution_warned_at = models.DateTimeField(null=True, blank=True)
    sla_resolution_breached_at = models.DateTimeField(null=True, blank=True)
    sla_resolution_met = models.BooleanField(null=True, blank=True)
    sla_paused_seconds = models.FloatField(default=0.0)
    sla_paused_since = models.DateTimeField(null=True, blank=True)
    sla_next_due = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # When the subject and description were erased (tombstoned: privacy erasure or retention).
    content_erased_at = models.DateTimeField(null=True, blank=True)
    # Last sequence numbers handed out: `seq` counts every event, `public_seq` those a customer sees.
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    last_public_seq = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]
        # Working tickets in the console (every change through the services); the raw add/change/delete
        # permissions are never used: the console's ticket models are read-only for everyone.
        permissions = [("work_ticket", "Can work tickets in the support console")]
        indexes = [
            # Keyset pages order by (column, id) in either direction; each index serves both.
            models.Index(fields=["-created_at", "-id"], name="ticket_created_idx"),
            models.Index(fields=["-updated_at", "-id"], name="ticket_updated_idx"),
            # A provider's tickets by their last change: its search's walk for a common word (migration 0019).
            models.Index(fields=["provider", "-updated_at", "-id"], name="ticket_provider_updated_idx"),
            # A customer's tickets: on their leases, and opened on another's lease (`CREATED_ON_ANOTHERS_LEASE`,
            # the scope's second arm): a bitmap scan of their own rows whatever the ordering, so the address
            # alone is the key (deduplicated: a fifteenth of the size with the ordering columns).
            models.Index(fields=["customer_address"], name="ticket_customer_address_idx"),
            # Support's open tickets: the console's queue and its previous/next ticket (a few hundred rows).
            models.Index(fields=["number"], condition=SUPPORT_QUEUE, name="ticket_support_queue_idx"),
            models.Index(
                fields=["created_by_address"],
                condition=CREATED_ON_ANOTHERS_LEASE,
                name="ticket_created_by_address_idx",
            ),
            models.Index(fields=["provider", "-created_at", "-id"], name="ticket_provider_idx"),
            models.Index(fields=["sla_next_due", "id"], name="ticket_sla_next_due_idx"),
            index_where_set("assigned_to", name="ticket_assigned_to_idx"),
            index_where_set("created_by", name="ticket_created_by_idx"),
            index_where_set("logs_requested_at", name="ticket_logs_requested_idx"),
            # The SLA sweep's claims: each partial index holds only the targets still waiting for that
            # threshold, so a sweep reads the rows that crossed it and nothing else, however many tickets
            # there are.
            *(
                models.Index(fields=[column], condition=condition, name=f"ticket_sla_{name}_idx")
                for name, (column, condition) in SLA_WAITING.items()
            ),
            # The idle timers' claims (waiting on the customer, resolved).
            models.Index(
                fields=["status", "status_changed_at"],
                condition=models.Q(status__in=["waiting_customer", "resolved"]),
                name="ticket_idle_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_number}: {self.subject}"

    @property
    def display_number(self) -> str:
        return format_ticket_number(self.number)


def format_ticket_number(number: int | None) -> str:
    """`SUP-000123`: the human number support staff and customers quote."""
    return f"{_ticket_number_prefix()}{number or 0:06d}"


@functools.cache
def _ticket_number_prefix() -> str:
    # Read once: a setting costs a lazy-object lookup, and a list page formats 50 numbers (5 % of its time).
    return str(settings.VE_TICKET_NUMBER_PREFIX)


@receiver(setting_changed)
def _forget_ticket_number_prefix(*, setting: str, **_kwargs: object) -> None:
    if setting == "VE_TICKET_NUMBER_PREFIX":
        _ticket_number_prefix.cache_clear()


class Comment(models.Model):
    """A message in a ticket's thread; `is_internal` notes are for the provider and support only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_kind = PartyKindField()
    author_address = models.CharField(max_length=90, blank=True)
    author_label = models.CharField(max_length=150)
    body = models.TextField()
    is_internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # A tombstone once erased: the body and the author's name are gone, id and time stay.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["ticket", "created_at"])]

    def __str__(self) -> str:
        return f"{self.author_label}: {self.body[:40]}"


class DeploymentLink(models.Model):
    """Another deployment related to a ticket (the ticket's own deployment is `Ticket.deployment`)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="deployment_links")
    deployment = models.ForeignKey("providers.Deployment", on_delete=models.CASCADE, related_name="+")
    added_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "deployment"], name="unique_ticket_deployment_link")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} ~ {self.deployment_id}"


class Assignment(models.Model):
    """One change of who works a ticket: from, to, by whom, why, when."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="assignments")
    from_kind = models.CharField(max_length=16, choices=Ticket.AssigneeKind.choices)
    # Indexed where set (`assignment_from_user_idx`, `assignment_to_user_idx`): most moves are between
    # queues (an escalation to support), with no user on either side.
    from_user = optional_user()
    to_kind = models.CharField(max_length=16, choices=Ticket.AssigneeKind.choices)
    to_user = optional_user()
    by_kind = PartyKindField()
    by_label = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    is_escalation = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            index_where_set("from_user", name="assignment_from_user_idx"),
            index_where_set("to_user", name="assignment_to_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_kind} -> {self.to_kind}"


def default_opening_hours() -> dict[str, list[list[str]]]:
    return {day: [["09:00", "17:00"]] for day in sla.WEEKDAYS[:5]}


class BusinessCalendar(models.Model):
    """Opening hours an SLA policy may count its targets in, instead of the 24×7 clock: a time zone, weekly
    opening hours in local time, and closed days (a country's public holidays, dates entered by hand)."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin.")
    opening_hours = models.JSONField(
        default=default_opening_hours,
        help_text='Local opening hours per weekday, e.g. {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], '
        '"sat": [["10:00", "14:00"]]}; a day left out is closed; "24:00" is midnight.',
    )
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO 3166-1 code whose public holidays close the calendar (e.g. DE); empty: none.",
    )
    holiday_subdivision = models.CharField(
        max_length=10, blank=True, help_text="State or region of that country, e.g. BY for Bavaria."
    )
    closed_dates = ArrayField(
        models.DateField(),
        default=list,
        blank=True,
        help_text="Further closed days, entered by hand: YYYY-MM-DD, comma-separated.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"

    def clean(self) -> None:
        checks = {
            "time_zone": lambda: sla.parse_time_zone(self.time_zone),
            "opening_hours": lambda: sla.parse_opening_hours(self.opening_hours),
            "holiday_country": lambda: sla.check_holiday_country(
                self.holiday_country, self.holiday_subdivision
            ),
        }
        errors = {}
        for field, check in checks.items():
            try:
                check()
            except ValueError as error:
                errors[field] = str(error)
        if errors:
            raise ValidationError(errors)


class SlaPolicy(models.Model):
    """Response and resolution targets for one priority (editable by superusers in the admin), on the 24×7
    clock or counted in a business calendar's working minutes."""

    priority = models.CharField(max_length=16, choices=Ticket.Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    calendar = models.ForeignKey(
        BusinessCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
        help_text="Count the targets in this calendar's opening hours; empty: 24×7.",
    )
    escalate_on_breach = models.BooleanField(
        default=True, help_text="A breach hands the ticket to the VirtEngine support queue."
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        clock = self.calendar.name if self.calendar_id else "24×7"
        return f"{self.priority}: {self.first_response_minutes} min / {self.resolution_minutes} min ({clock})"


class TicketEvent(models.Model):
    """One fact in a ticket's history, append-only, numbered per ticket without gaps.

    `seq` numbers every event; `public_seq` numbers only the events a customer may see, so a customer's
    view of the history has no gaps that would hint at internal notes.
    """

    class Kind(models.TextChoices):
        TICKET_CREATED = "ticket_created"
        NEW_COMMENT = "new_comment"
        STATUS_CHANGE = "status_change"
        PRIORITY_CHANGE = "priority_change"
        ASSIGNMENT_CHANGE = "assignment_change"
        ATTACHMENT_ADDED = "attachment_added"
        DEPLOYMENT_LINKED = "deployment_linked"
        DEPLOYMENT_UNLINKED = "deployment_unlinked"
        SLA_WARNING = "sla_warning"
        SLA_BREACHED = "sla_breached"
        LOGS_FETCHED = "logs_fetched"
        TICKET_EDITED = "ticket_edited"
        SATISFACTION_RATED = "satisfaction_rated"
        CONTENT_ERASED = "content_erased"

    # Not indexed alone: the unique (ticket, seq) index starts with it.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    public_seq = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    is_internal = models.BooleanField(default=False)
    # Indexed where set (`event_actor_idx`): wallet parties and the system act with no user.
    actor = optional_user()
    actor_kind = PartyKindField()
    actor_label = models.CharField(max_length=150)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the event's content was erased (its data tombstoned, its envelope key destroyed): the
    # erasure that did it, so that verification reports it as erased rather than tampered.
    erasure = models.ForeignKey(
        "tickets.ContentErasure",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["ticket", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "seq"], name="unique_ticket_event_seq"),
            # Internal events have no public number: they stay out of this index.
            models.UniqueConstraint(
                fields=["ticket", "public_seq"],
                condition=models.Q(public_seq__isnull=False),
                name="unique_ticket_event_public_seq",
            ),
        ]
        indexes = [
            index_where_set("actor", name="event_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.seq} {self.kind}"


# Models in modules of their own, registered here.
from tickets.models import macros as macros  # noqa: E402
from tickets.models import satisfaction as satisfaction  # noqa: E402
from tickets.models.attachments import Attachment as Attachment  # noqa: E402
from tickets.models.erasure import ContentErasure as ContentErasure  # noqa: E402
from tickets.models.search import SearchIndexState as SearchIndexState  # noqa: E402
from tickets.models.search import TicketSearch as TicketSearch  # noqa: E402

"""Macros: canned replies (with placeholders) that may also set a ticket's priority and status in one step.

A macro belongs to VirtEngine support (`provider` empty: shared by every agent) or to one provider (its
members and machine credentials). What a macro does is only ever done through the ticket services
(`tickets.services.macros.macro_apply`), so applying one writes exactly the events of the same steps done
by hand; the macro itself is not recorded on the ticket.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

MACRO_NAME_MAX_LENGTH = 100


class Macro(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Empty: a support macro, shared by every agent. Not indexed alone: the unique name constraint starts
    # with it.
    provider = models.ForeignKey(
        "providers.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="macros",
        db_index=False,
        help_text="Empty: a VirtEngine support macro, shared by every agent.",
    )
    name = models.CharField(max_length=MACRO_NAME_MAX_LENGTH)
    body = models.TextField(
        blank=True,
        help_text="The reply, with placeholders such as {customer_name} or {ticket_number}; empty: no reply.",
    )
    is_internal = models.BooleanField(
        default=False, help_text="The reply is an internal note (provider and support only)."
    )
    # Empty: the macro leaves the status (or priority) as it is.
    status = models.CharField(max_length=20, blank=True)
    priority = models.CharField(max_length=16, blank=True)
    created_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # One name per owner; support's shared macros (no provider) are one owner.
            models.UniqueConstraint(
                fields=["provider", "name"], name="unique_macro_name_per_owner", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_label(self) -> str:
        return "VirtEngine support" if self.provider_id is None else str(self.provider)

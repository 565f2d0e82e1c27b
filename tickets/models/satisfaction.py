"""Satisfaction (CSAT): a ticket's customer rates its resolution from 1 to 5, with an optional comment.

One row per ticket, the latest rating: rating again replaces it. Every rating is also a `satisfaction_rated`
ticket event (recorded by `tickets.services.satisfaction`), so each one is in the history and anchored like
any other change; this row is what the reports count. The provider is copied from the ticket (it never
changes) so that the report per provider and period reads this table alone.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

RATING_MIN = 1
RATING_MAX = 5
SATISFACTION_COMMENT_MAX_LENGTH = 2_000


class SatisfactionRating(models.Model):
    ticket = models.OneToOneField("tickets.Ticket", on_delete=models.CASCADE, related_name="satisfaction")
    # Not indexed alone: the report's index starts with it.
    provider = models.ForeignKey(
        "providers.ProviderAccount", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    customer_address = models.CharField(max_length=90)
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(RATING_MIN), MaxValueValidator(RATING_MAX)]
    )
    comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-rated_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__gte=RATING_MIN, rating__lte=RATING_MAX),
                name="satisfaction_rating_range",
            ),
        ]
        indexes = [models.Index(fields=["provider", "rated_at"], name="satisfaction_provider_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.rating}/5"

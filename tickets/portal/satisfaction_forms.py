"""The rating form of the portal (a ticket's page and the email link's page): five scores and a comment."""

from __future__ import annotations

from django import forms

from tickets.models.satisfaction import RATING_MAX, RATING_MIN, SATISFACTION_COMMENT_MAX_LENGTH

RATING_WORDS = {1: "1 — Very poor", 2: "2 — Poor", 3: "3 — OK", 4: "4 — Good", 5: "5 — Excellent"}


class SatisfactionForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="How did we do?",
        coerce=int,
        choices=[(score, RATING_WORDS[score]) for score in range(RATING_MIN, RATING_MAX + 1)],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Anything to add? (optional)",
        required=False,
        max_length=SATISFACTION_COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

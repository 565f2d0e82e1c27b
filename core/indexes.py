"""Index shapes the apps share."""

from __future__ import annotations

from django.db import models


def index_where_set(field: str, *, name: str) -> models.Index:
    """An index of a nullable column over the rows where it is set: lookups (and a foreign key's cascade)
    only ever ask for a value, and the rows without one — most, for an optional key — are never written to
    it."""
    return models.Index(fields=[field], condition=models.Q(**{f"{field}__isnull": False}), name=name)

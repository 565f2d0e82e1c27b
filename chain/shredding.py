"""Shred keys of envelopes (`chain.envelopes` version 2, `chain.models.EnvelopeKey`): handed out to the
drain (created once per event, then reused), read by verification, destroyed by erasure."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from chain import envelopes
from chain.models import EnvelopeKey


def shred_keys_for_sealing(event_ids: Iterable[int]) -> dict[int, bytes]:
    """The shred key each event's envelope is sealed with: its stored key, created now if it has none (a
    retry reuses the first attempt's). An event whose key was destroyed (erased before it was anchored) gets
    a throwaway key, kept nowhere: what is sealed with it is unreadable from the start."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return {}
    table = connection.ops.quote_name(EnvelopeKey._meta.db_table)
    # One statement for the batch (the drain seals hundreds at once): new keys are inserted, and the
    # no-op update on a conflict makes RETURNING hand back the stored key (or NULL, destroyed) as well.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS k (event_id, key, created_at) "
            "SELECT unnest(%s::bigint[]), unnest(%s::bytea[]), %s "
            "ON CONFLICT (event_id) DO UPDATE SET key = k.key RETURNING event_id, key",
            [ids, [envelopes.new_shred_key() for _ in ids], timezone.now()],
        )
        stored = {event_id: bytes(key) if key is not None else None for event_id, key in cursor.fetchall()}
    return {event_id: stored.get(event_id) or envelopes.new_shred_key() for event_id in ids}


def stored_shred_keys(event_ids: Iterable[int]) -> dict[int, bytes | None]:
    """Each event's stored shred key: bytes, None if destroyed; events without a row are left out."""
    return {
        event_id: bytes(key) if key is not None else None
        for event_id, key in EnvelopeKey.objects.filter(event_id__in=list(event_ids)).values_list(
            "event_id", "key"
        )
    }


def shred_keys_destroy(event_ids: Iterable[int]) -> int:
    """Destroy the shred keys of these events (in the caller's transaction): existing keys are nulled, and
    events not sealed yet get a destroyed row, so that no later drain creates a key for them. Returns how many
    events' keys are destroyed."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return 0
    now = timezone.now()
    table = connection.ops.quote_name(EnvelopeKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (event_id, key, created_at, destroyed_at) "
            "SELECT unnest(%s::bigint[]), NULL, %s, %s "
            "ON CONFLICT (event_id) DO UPDATE SET key = NULL, "
            f"destroyed_at = COALESCE({table}.destroyed_at, EXCLUDED.destroyed_at)",
            [ids, now, now],
        )
        return int(cursor.rowcount)

"""Export (the right of access), and the envelope keys a party may use: everything a customer may see, as one zip streamed while it is built.

`export.json` holds the customer's tickets as the API shows them to that customer (thread, attachments'
descriptions, history) plus every event the presenter shows them; `files/<id>-<name>` holds each visible file,
decrypted as it streams. The same selectors and presenter as every other surface decide what is in it, so no
internal note or internal file, and nothing of another party's tickets, can be. Memory stays bounded: the zip
is written to a small buffer that is handed out as it fills (ZIP data descriptors, no seeking), files are
read in 64 KiB blocks.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from chain import shredding
from chain.models import idempotency_key_for
from core.errors import Forbidden, NotFound
from core.parties import Party
from tickets import selectors
from tickets.api import serializers as io
from tickets.files import storage
from tickets.models import TicketEvent
from tickets.presenter import audience_of, present_events

BLOCK = 64 * 1024
FORMAT_VERSION = 1


class _Pipe:
    """A write-only, non-seekable file whose bytes are taken out as they come (zipfile's target)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        if data:
            self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def export_filename(party: Party) -> str:
    return f"virtengine-support-export-{party.address[-8:] or 'me'}-{timezone.now():%Y%m%d}.zip"


def require_customer(party: Party) -> None:
    if not party.is_customer:
        raise Forbidden("The export is for customers: everything they may see, as one zip.")


def _ticket_ids(party: Party) -> list[Any]:
    return list(selectors.tickets_visible_to(party).order_by("created_at", "pk").values_list("pk", flat=True))


def _ticket_record(party: Party, ticket_id: Any) -> dict[str, Any]:
    audience = audience_of(party)
    detail = selectors.ticket_detail(party, ticket_id)
    ticket = selectors.ticket_get(party, ticket_id)
    events = selectors.events_visible_to(party, ticket)
    return {
        "ticket": io.TicketDetailOutput(detail, context={"audience": audience}).data,
        "events": present_events(events, audience, selectors.event_related(events)),
    }


def _files_of(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    seen = set()
    ticket = record["ticket"]
    for attachment in [
        *ticket.get("attachments", []),
        *(a for c in ticket.get("comments", []) for a in c.get("attachments", [])),
    ]:
        if attachment["id"] not in seen:
            seen.add(attachment["id"])
            yield attachment


def export_stream(party: Party) -> Iterator[bytes]:
    """The zip's bytes, in pieces, for a streaming response (customers only)."""
    require_customer(party)
    pipe = _Pipe()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("export.json", mode="w", force_zip64=True) as entry:
            head = {
                "format": FORMAT_VERSION,
                "exported_at": timezone.now().isoformat(),
                "address": party.address,
            }
            entry.write(json.dumps(head)[:-1].encode() + b', "tickets": [')
            for number, ticket_id in enumerate(_ticket_ids(party)):
                record = _ticket_record(party, ticket_id)
                files.extend(_files_of(record))
                entry.write((b", " if number else b"") + json.dumps(record, default=str).encode())
                yield pipe.take()
            entry.write(b"]}")
        yield pipe.take()
        for described in files:
            yield from _file_entry(archive, pipe, party, described)
    yield pipe.take()


def _file_entry(
    archive: zipfile.ZipFile, pipe: _Pipe, party: Party, described: dict[str, Any]
) -> Iterator[bytes]:
    try:
        attachment = selectors.attachment_get_for_download(party, described["id"])  # visibility, again
    except NotFound:
        return  # erased (its key is destroyed: only its description remains, in export.json)
    name = f"files/{attachment.pk}-{attachment.filename}".replace("..", "_")
    with (
        storage.open_stored(attachment.storage_key) as body,
        archive.open(name, mode="w", force_zip64=True) as entry,
    ):
        while block := body.read(BLOCK):
            entry.write(block)
            if len(pipe.chunks) > 4:
                yield pipe.take()
    yield pipe.take()


def envelope_keys_visible_to(party: Party, ticket_id: object) -> list[dict[str, Any]]:
    """The shred keys of the events of a ticket the party may see (their envelopes' second key, which the
    ledger never holds), by ledger key: what lets a recipient open its envelopes from the ledger. None for
    an erased event (destroyed); events not anchored yet have none."""
    ticket = selectors.ticket_get(party, ticket_id)
    visible = present_events(
        selectors.events_visible_to(party, ticket), audience_of(party), selectors.event_related([])
    )
    by_number = {event["seq"] for event in visible}
    events = TicketEvent.objects.filter(ticket=ticket).order_by("seq").only("pk", "seq", "public_seq")
    wanted: list[tuple[TicketEvent, int | None]] = [
        (event, event.seq if party.sees_internal else event.public_seq) for event in events
    ]
    wanted = [(event, number) for event, number in wanted if number in by_number]
    keys = shredding.stored_shred_keys(event.pk for event, _number in wanted)
    listed = []
    for event, number in wanted:
        if event.pk not in keys:
            continue  # not sealed yet
        key = keys[event.pk]
        listed.append(
            {
                "ledger_key": idempotency_key_for(ticket_id=ticket.pk, seq=event.seq),
                "seq": number,
                "shred_key": base64.b64encode(key).decode() if key is not None else None,
            }
        )
    return listed

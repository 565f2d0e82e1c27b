"""A ticket's files in the page: images in a viewer of their own, text and logs read in the browser (escaped,
with line numbers, the first `TEXT_PREVIEW_BYTES` and a link to the whole file). The file itself is still
served only by the API's download (`Content-Disposition: attachment`, `nosniff`, a sandboxing CSP): this page
shows it, it never serves it inline."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.errors import NotFound
from core.parties import Party
from tickets import selectors
from tickets.files.storage import open_stored
from tickets.models import Attachment
from tickets.portal.views import base_context, portal_page

# How much of a text file the page shows; the rest is a download away.
TEXT_PREVIEW_BYTES = 64 * 1024
TEXT_TYPES = ("application/json", "application/x-ndjson")


def viewer_kind(content_type: object) -> str:
    """How the portal shows a file: "image", "text" or "other" (download only)."""
    content_type = str(content_type or "")
    if content_type.startswith("image/"):
        return "image"
    if content_type.startswith("text/") or content_type in TEXT_TYPES:
        return "text"
    return "other"


def _head(attachment: Attachment, limit: int) -> bytes:
    """The first `limit` bytes of the file's plaintext (a decrypting reader may return less per read)."""
    chunks: list[bytes] = []
    wanted = limit
    with open_stored(attachment.storage_key) as body:
        while wanted > 0:
            chunk = body.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
    return b"".join(chunks)


@require_GET
@portal_page
def file_view(request: HttpRequest, party: Party, reference: str, attachment_id: str) -> HttpResponse:
    ticket_id = selectors.ticket_id_for_reference(party, reference)
    try:
        attachment = selectors.attachment_get_for_download(party, attachment_id)
    except NotFound as error:
        raise Http404(error.message) from error
    if attachment.ticket_id != ticket_id:
        raise Http404("No such file on this ticket.")
    kind = viewer_kind(attachment.content_type)
    lines: list[str] = []
    cut = erased = False
    if kind == "text":
        try:
            head = _head(attachment, TEXT_PREVIEW_BYTES)
        except FileNotFoundError:
            erased = True
        else:
            cut = attachment.size > len(head)
            text = head.decode("utf-8", errors="replace")
            lines = text.splitlines()
            if cut and lines and not text.endswith("\n"):
                lines[-1] += " …"
    context = {
        **base_context(party),
        "reference": reference,
        "file": attachment,
        "kind": kind,
        "lines": lines,
        "cut": cut,
        "erased": erased,
        "preview_bytes": TEXT_PREVIEW_BYTES,
    }
    return render(request, "portal/file_view.html", context)

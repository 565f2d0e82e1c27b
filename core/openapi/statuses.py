"""The statuses an operation can answer because of the plumbing every API view shares, and why.

Each rule names what makes the status possible, so that it is listed exactly where the server can give it:

- 400: a malformed request (query, body, too many parameters, a bad Host) — every operation;
- 401 and 403: authentication and roles (and the session's CSRF check) — every operation that is not open;
- 404: an object named in the path that is missing or not visible to the caller — every path parameter;
- 406: an `Accept` header that the operation's media types cannot satisfy — every operation;
- 409 `ticket_closed`: a write to a ticket goes through `tickets.services.recording.require_not_closed`;
- 413 and 415: the body is read (to parse it, or to check a signature over it) — every operation;
- 429 with `Retry-After`: the operation has a throttle, or a signature failed too often from the address;
- 503 with `Retry-After`: PostgreSQL or Redis is unreachable — every operation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
        "required": True,
    }
}

DESCRIPTIONS = {
    400: "Invalid input: `fields` names each offending field (body, query or header) and what is wrong.",
    401: (
        "Missing or invalid authentication (`code` says why: a bad or reused signature, an unknown "
        "principal, an expired session...). See the security schemes for which one is tried."
    ),
    403: (
        "Authenticated, but your role may not do this (`forbidden`), your account has no role, or the "
        "session's CSRF check failed (`csrf_failed`)."
    ),
    404: "Not found, or not visible to you: the two are indistinguishable by design.",
    406: "The `Accept` header names no media type this operation answers.",
    409: "The request conflicts with the object's state; `code` says which rule.",
    413: "The request body is larger than the limit.",
    415: "The request's Content-Type is not one this operation accepts.",
    429: "Too many requests from you (or too many failed signatures from your address); see `Retry-After`.",
    503: "A backing service is unavailable; nothing was changed. Retry after `Retry-After` seconds.",
}
TICKET_CLOSED = "`ticket_closed`: the ticket is closed and takes no more changes."
_TICKET_WRITE = re.compile(r"^/api/v1/tickets/\{ticket_id\}(/|$)")


@dataclass(frozen=True)
class OperationTraits:
    """What the shared plumbing needs to know about an operation to tell its statuses."""

    path: str
    method: str
    authenticated: bool
    throttled: bool
    has_path_parameters: bool


def plumbing_statuses(traits: OperationTraits) -> dict[int, str]:
    """`{status: description}` this operation can answer besides its own, by the rules above."""
    statuses = {status: DESCRIPTIONS[status] for status in (400, 406, 413, 415, 503)}
    if traits.authenticated:
        statuses.update({401: DESCRIPTIONS[401], 403: DESCRIPTIONS[403], 429: DESCRIPTIONS[429]})
    elif traits.throttled:
        statuses[429] = DESCRIPTIONS[429]
    if traits.has_path_parameters:
        statuses[404] = DESCRIPTIONS[404]
    if traits.method not in {"GET", "HEAD", "OPTIONS"} and _TICKET_WRITE.match(traits.path):
        statuses[409] = f"{DESCRIPTIONS[409]} {TICKET_CLOSED}"
    return statuses


def with_retry_after(status: int) -> bool:
    return status in {429, 503}

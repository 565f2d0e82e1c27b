"""What both request-signing schemes share (pure: no Django): the refusal they raise and reading their
fields from headers or a WebSocket query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The authentication precedence (README, "Authentication"; the schema's security section): a request that
# carries any header with this prefix (a socket: any query parameter with the other) is a signed request,
# judged by its signature alone; only a request with none of them is served by the portal session.
SIGNED_HEADER_PREFIX = "x-ve-"
SIGNED_QUERY_PREFIX = "ve_"


def carries_signature(names: Iterable[str], prefix: str = SIGNED_HEADER_PREFIX) -> bool:
    """Whether any of these header (or query parameter) names claims a signature, even an empty one."""
    return any(str(name).lower().startswith(prefix) for name in names)


class SignatureRefused(Exception):
    """A signed request was refused; `reason_code` says why in one word for the client."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = str(reason_code)  # plain str, also when given a Reason member
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason_code!r}, {self.message!r})"


def _single(value: str | Sequence[str] | None) -> str | None:
    # parse_qs-style mappings hold lists; take the last value like Django's QueryDict.get does.
    if value is None or isinstance(value, str):
        return value
    return value[-1] if value else None


def extract_fields(source: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str | None]:
    """`{field: value}` for each `field: header-or-parameter name`, matched case-insensitively, stripped."""
    lowered = {str(key).lower(): value for key, value in source.items()}
    fields: dict[str, str | None] = {}
    for field, name in names.items():
        raw = _single(lowered.get(name.lower()))
        fields[field] = raw.strip() if raw is not None else None
    return fields

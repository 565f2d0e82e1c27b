"""DKIM (`dkimpy`): does a signature of the message verify, and is its domain the From address's?

`dkim_check` verifies every `DKIM-Signature` of a message (a pass on any one is a pass) and reports
`pass`, `fail` (signed, and no signature verifies) or `absent`. Keys are looked up in DNS, or in the file
VE_INBOUND_DKIM_KEYS_FILE names (`<selector>._domainkey.<domain> <TXT record>` per line) where one is set.
A DNS time-out is neither: `DkimTemporaryError`, and the message is tried again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import dkim
from django.conf import settings

logger = logging.getLogger(__name__)
_MAX_SIGNATURES = 5

DnsFunc = Callable[..., bytes | None]


class DkimTemporaryError(Exception):
    """A key could not be looked up now (DNS time-out): try again later."""


@dataclass(frozen=True)
class DkimResult:
    status: str  # "pass" | "fail" | "absent"
    domains: tuple[str, ...] = ()  # the d= of the signatures that verified
    detail: str = ""

    def aligned_with(self, from_domain: str) -> bool:
        """A passing signature's domain is the From domain or a parent of it (relaxed alignment)."""
        from_domain = from_domain.lower().rstrip(".")
        return any(from_domain == d or from_domain.endswith(f".{d}") for d in self.domains)


@lru_cache(maxsize=4)
def _keys_from_file(path: str) -> dict[bytes, bytes]:
    keys = {}
    for line in Path(path).read_text().splitlines():
        name, _, record = line.strip().partition(" ")
        if name and record:
            keys[name.rstrip(".").lower().encode()] = record.strip().encode()
    return keys


def _dnsfunc() -> DnsFunc:
    path: str = settings.VE_INBOUND_DKIM_KEYS_FILE
    if not path:
        return dkim.dnsplug.get_txt  # type: ignore[no-any-return]
    keys = _keys_from_file(path)

    def from_file(name: bytes, timeout: float = 5) -> bytes | None:  # noqa: ARG001 - dkimpy's signature
        return keys.get(name.rstrip(b".").lower())

    return from_file


def dkim_check(raw: bytes, *, dnsfunc: DnsFunc | None = None) -> DkimResult:
    """Verify the message's DKIM signatures."""
    lookup = dnsfunc or _dnsfunc()
    try:
        verifier = dkim.DKIM(raw)
        count = sum(1 for name, _value in verifier.headers if name.lower() == b"dkim-signature")
    except Exception as exc:  # noqa: BLE001 - a message dkimpy cannot even read is not signed by anyone
        return DkimResult("fail", detail=f"unreadable for DKIM: {type(exc).__name__}")
    if count == 0:
        return DkimResult("absent")
    passed: list[str] = []
    errors: list[str] = []
    for index in range(min(count, _MAX_SIGNATURES)):
        try:
            if verifier.verify(idx=index, dnsfunc=lookup):
                passed.append(verifier.domain.decode(errors="replace").lower())
            else:
                errors.append(f"signature {index + 1} does not verify")
        except dkim.DnsTimeoutError as exc:
            raise DkimTemporaryError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - a malformed signature or key is a failed signature
            errors.append(f"signature {index + 1}: {type(exc).__name__}: {exc}"[:200])
    if passed:
        return DkimResult("pass", domains=tuple(passed))
    return DkimResult("fail", detail="; ".join(errors))

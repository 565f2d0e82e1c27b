"""Telling open sockets at once that someone's access changed: a credential revoked, a session ended, a
membership or a lease's owner edited.

Every web process's fan-out hub listens on one group (`ACCESS_GROUP`); `access_change_announce` sends it,
after the change commits, which credentials to re-check. The hub re-checks those sockets before it
delivers anything else, so a socket whose access ended receives nothing committed after the change. The
periodic re-check every VE_WS_RESYNC_SECONDS stays as the safety net (for a change made around the
services, or an announcement lost while Redis was down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ACCESS_GROUP = "access.changes"
ACCESS_MESSAGE_TYPE = "access.changed"
SEND_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class AccessChange:
    """Whose sockets to close or re-check: the sockets of `ended_sessions` close at once (the sign-out is
    being written as this is sent, so a re-check could still find the session); those of an HMAC
    principal, a user, a provider or a wallet address are re-checked; `everyone`'s too, for a change whose
    reach is not worth working out (an admin edit)."""

    ended_sessions: frozenset[str] = field(default_factory=frozenset)
    principals: frozenset[str] = field(default_factory=frozenset)
    user_ids: frozenset[int] = field(default_factory=frozenset)
    provider_ids: frozenset[int] = field(default_factory=frozenset)
    addresses: frozenset[str] = field(default_factory=frozenset)
    everyone: bool = False

    def as_message(self) -> dict[str, Any]:
        return {
            "type": ACCESS_MESSAGE_TYPE,
            "group": ACCESS_GROUP,
            "ended_sessions": sorted(self.ended_sessions),
            "principals": sorted(self.principals),
            "user_ids": sorted(self.user_ids),
            "provider_ids": sorted(self.provider_ids),
            "addresses": sorted(self.addresses),
            "everyone": self.everyone,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> AccessChange:
        def members(key: str) -> frozenset[Any]:
            value = message.get(key)
            return frozenset(value) if isinstance(value, list) else frozenset()

        return cls(
            ended_sessions=members("ended_sessions"),
            principals=members("principals"),
            user_ids=members("user_ids"),
            provider_ids=members("provider_ids"),
            addresses=members("addresses"),
            everyone=bool(message.get("everyone")),
        )

    def ends(self, *, scheme: str, subject: str) -> bool:
        """Whether a socket's credential (its scheme and subject) ended with this change."""
        return scheme == "session" and subject in self.ended_sessions

    def concerns(
        self, *, scheme: str, subject: str, user_id: int | None, provider_id: int | None, address: str
    ) -> bool:
        """Whether a socket (its credential's scheme and subject, its user, its party's provider and
        address) is one to re-check."""
        return (
            self.everyone
            or (scheme == "hmac" and subject in self.principals)
            or (user_id is not None and user_id in self.user_ids)
            or (provider_id is not None and provider_id in self.provider_ids)
            or (bool(address) and address in self.addresses)
        )


def access_change_announce(
    *,
    ended_sessions: Iterable[str] = (),
    principals: Iterable[str] = (),
    user_ids: Iterable[int] = (),
    provider_ids: Iterable[int] = (),
    addresses: Iterable[str] = (),
    everyone: bool = False,
) -> None:
    """Once the current transaction commits (at once outside one), have every web process re-check the
    sockets named. Sent before this returns, so that nothing committed afterwards can reach them first."""
    change = AccessChange(
        ended_sessions=frozenset(key for key in ended_sessions if key),
        principals=frozenset(principals),
        user_ids=frozenset(user_ids),
        provider_ids=frozenset(provider_ids),
        addresses=frozenset(addresses),
        everyone=everyone,
    )
    transaction.on_commit(lambda: _send(change.as_message()))


def _send(message: dict[str, Any]) -> None:
    try:
        async_to_sync(_send_with_timeout)(message)
    except Exception:  # Redis down: the sockets' periodic re-check closes them instead
        logger.warning("could not announce an access change; sockets re-check on their own", exc_info=True)


async def _send_with_timeout(message: dict[str, Any]) -> None:
    await asyncio.wait_for(get_channel_layer().group_send(ACCESS_GROUP, message), SEND_TIMEOUT_SECONDS)

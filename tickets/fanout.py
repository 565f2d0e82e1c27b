"""Per-process fan-out of group messages to the WebSockets connected to this process.

With Channels' usual pattern every socket joins the group itself, so one event becomes one Redis message
per socket, popped one at a time by each process: 1,000 watchers cost 1,000 Redis messages per comment.
Here each process joins a group once, on behalf of all its local sockets, receives one message per event,
serialises it once and hands it to the sockets in memory. Sockets still keep their own per-ticket
sequence check, so ordering, de-duplication and gap filling work as before.

The hub belongs to an event loop (daphne has one; tests have one per test), starts with the first local
member and stops with the last. Every `VE_WS_RESYNC_SECONDS` it re-joins its groups (memberships expire in
channels_redis and vanish when Redis restarts), re-checks every socket's credential and access in one
batch (a revoked HMAC credential or an ended session closes with 4401, lost access with 4403), renews the
sockets' places under the per-party and per-address caps. That periodic re-check is the safety net: a
revocation, a sign-out or an access change made through the services is announced on `ACCESS_GROUP`
(core.access), and the hub re-checks the sockets concerned at once, before delivering anything else.

Live delivery heals at once rather than at the next resync: a socket that sees a gap in `seq` replays from
the database right away, and every VE_WS_CATCH_UP_SECONDS the hub checks, in one query for all watched
tickets, whether a socket is still behind an event that was already committed two checks earlier (so a
broadcast merely in flight, even on a busy machine, is never replayed, and a lost one — the last of a
burst, a message dropped by a full channel or a Redis hiccup — reaches its sockets within three
intervals). Sockets at the same place replay from one read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import logging
import weakref
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from accounts import throttling
from accounts.ws_auth import CLOSE_UNAUTHENTICATED, SocketCredential
from core.access import ACCESS_GROUP, ACCESS_MESSAGE_TYPE, AccessChange
from core.errors import NotFound
from core.parties import Party
from tickets import realtime, selectors

logger = logging.getLogger(__name__)

# A socket is behind only if it lacks an event committed this many checks ago (in-flight ones are not).
CATCH_UP_GRACE_CHECKS = 3
# A transaction stamps its ticket before it commits: the streams' check looks this far back past its last
# look, so that a commit slower than this (a very slow one) is the only way to slip between two checks.
STREAM_CHECK_OVERLAP = datetime.timedelta(seconds=10)


class Member(Protocol):
    party: Party
    credential: SocketCredential
    ticket_id: str | None  # None for an all-tickets stream
    slot: tuple[str, str, str] | None  # (socket id, holder, client address) under the socket caps
    closing: bool

    async def deliver(self, message: dict[str, Any], text: str) -> None: ...

    async def refuse(self, code: int) -> None:
        """Close with `code` and stop receiving."""
        ...

    opened_at: datetime.datetime | None  # streams only
    last_seq: dict[str, int]

    async def adopt(self, ticket_id: str) -> None:
        """A stream: send what it missed of a ticket it never heard of."""

    def positions(self) -> dict[str, tuple[int, bool]]:
        """ticket id → (last seq sent, counts internal events): where this socket stands."""
        ...

    async def catch_up(self, ticket_id: str, missed: list[dict[str, Any]] | None = None) -> None:
        """Send what this socket missed of the ticket (`missed`, read for its place, or from the database)."""
        ...


class LocalHub:
    def __init__(self) -> None:
        self.members: dict[str, set[Member]] = {}
        self.channel_name: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.lock = asyncio.Lock()
        # ticket id → (last seq, last public seq) as each of the last catch-up checks found them, oldest first.
        self.committed: collections.deque[dict[str, tuple[int, int]]] = collections.deque(
            maxlen=CATCH_UP_GRACE_CHECKS
        )
        self.streams_checked_at: datetime.datetime | None = None

    async def join(self, group: str, member: Member) -> None:
        async with self.lock:
            if self.channel_name is None:
                self.channel_name = await get_channel_layer().new_channel("hub.")
                await self._listen_for_access_changes()
                self.tasks = [
                    asyncio.create_task(self._receive_forever()),
                    asyncio.create_task(self._rejoin_forever()),
                    asyncio.create_task(self._catch_up_forever()),
                ]
            members = self.members.setdefault(group, set())
            if not members:
                await get_channel_layer().group_add(group, self.channel_name)
            members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        async with self.lock:
            members = self.members.get(group)
            if members is None:
                return
            members.discard(member)
            if not members:
                del self.members[group]
                with contextlib.suppress(Exception):  # Redis down: the membership expires anyway
                    await get_channel_layer().group_discard(group, self.channel_name)
            if not self.members:
                await self._stop()

    async def _listen_for_access_changes(self) -> None:
        try:
            await get_channel_layer().group_add(ACCESS_GROUP, self.channel_name)
        except Exception:  # Redis down: the periodic re-check still closes sockets that lost access
            logger.warning("fan-out hub could not listen for access changes", exc_info=True)

    async def _stop(self) -> None:
        # The last socket may leave from inside one of the hub's own tasks (a re-check closing it): that
        # task is not cancelled here, it ends once it sees the hub stopped (its channel is gone).
        current = asyncio.current_task()
        others = [task for task in self.tasks if task is not current]
        channel_name, self.channel_name, self.tasks = self.channel_name, None, []
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if channel_name is not None:
            with contextlib.suppress(Exception):  # Redis down: the membership expires anyway
                await get_channel_layer().group_discard(ACCESS_GROUP, channel_name)
        self.committed.clear()
        self.streams_checked_at = None

    async def _receive_forever(self) -> None:
        layer = get_channel_layer()
        channel_name = self.channel_name
        while channel_name is not None and self.channel_name == channel_name:
            try:
                message = await layer.receive(channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("fan-out hub lost the channel layer; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            if message.get("type") == ACCESS_MESSAGE_TYPE:
                # Before anything received after it is delivered: nothing committed after the change
                # reaches a socket that lost its access.
                await self._recheck_access(AccessChange.from_message(message))
                continue
            await self._dispatch(message)

    async def _recheck_access(self, change: AccessChange) -> None:
        """Close the sockets whose session just ended; re-check the others the change concerns."""
        concerned = []
        for member in self._all_members():
            credential, party = member.credential, member.party
            if change.ends(scheme=credential.scheme, subject=credential.subject):
                await member.refuse(CLOSE_UNAUTHENTICATED)
            elif change.concerns(
                scheme=credential.scheme,
                subject=credential.subject,
                user_id=credential.user_id,
                provider_id=party.provider_id,
                address=party.address,
            ):
                concerned.append(member)
        if not concerned:
            return
        try:
            verdicts = await socket_refusals([(m.party, m.credential, m.ticket_id) for m in concerned])
        except Exception:
            logger.warning("fan-out hub could not re-check sockets after an access change", exc_info=True)
            return
        for member, code in zip(concerned, verdicts, strict=True):
            if code is not None:
                await member.refuse(code)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        members = list(self.members.get(message.get("group", ""), ()))
        if not members:
            return
        text = json.dumps(message["payload"], separators=(",", ":"))
        for member in members:
            try:
                await member.deliver(message, text)
            except Exception:  # one broken socket must not starve the others
                logger.warning("delivery to a socket failed", exc_info=True)

    async def _rejoin_forever(self) -> None:
        channel_name = self.channel_name
        while channel_name is not None and self.channel_name == channel_name:
            await asyncio.sleep(settings.VE_WS_RESYNC_SECONDS)
            for group in [*self.members, ACCESS_GROUP]:
                try:
                    await get_channel_layer().group_add(group, channel_name)
                except Exception:
                    logger.warning("fan-out hub could not re-join %s", group, exc_info=True)
            try:
                await self._recheck_members()
            except Exception:
                logger.warning("fan-out hub could not re-check its sockets' access", exc_info=True)

    async def _catch_up_forever(self) -> None:
        channel_name = self.channel_name
        while channel_name is not None and self.channel_name == channel_name:
            await asyncio.sleep(settings.VE_WS_CATCH_UP_SECONDS)
            try:
                await self._catch_up_stragglers()
                await self._tell_streams_of_missed_tickets()
            except Exception:
                logger.warning("fan-out hub could not check for missed events", exc_info=True)

    def _all_members(self) -> list[Member]:
        unique = {member for group_members in self.members.values() for member in group_members}
        return [member for member in unique if not member.closing]

    async def _recheck_members(self) -> None:
        """Close the sockets whose credential was revoked or whose party lost access; renew the others'
        places under the socket caps."""
        members = self._all_members()
        if not members:
            return
        verdicts = await socket_refusals([(m.party, m.credential, m.ticket_id) for m in members])
        for member, code in zip(members, verdicts, strict=True):
            if code is not None:
                await member.refuse(code)
        await renew_slots([m.slot for m in members if m.slot is not None and not m.closing])

    async def _tell_streams_of_missed_tickets(self) -> None:
        """Streams learn of a ticket from its broadcasts; if every broadcast of a ticket since a stream
        opened was lost (Redis restarting just then), it would never hear of it. One read of the tickets
        changed since the last check (with an overlap for slow commits) finds those, for all streams."""
        streams = [m for m in self._all_members() if m.opened_at is not None]
        now = timezone.now()
        if not streams:
            self.streams_checked_at = None
            return
        earliest = min(m.opened_at for m in streams if m.opened_at is not None)
        start = max(earliest, (self.streams_checked_at or earliest) - STREAM_CHECK_OVERLAP)
        self.streams_checked_at = now
        touched = await touched_tickets(start)
        for member in streams:
            for ticket_id, ticket in touched.items():
                if ticket_id in member.last_seq or not selectors.ticket_is_visible_to(member.party, ticket):
                    continue
                if not member.party.sees_internal and ticket.public_updated_at < start:
                    continue  # only internal changes: nothing a customer's stream could have missed
                await member.adopt(ticket_id)

    async def _catch_up_stragglers(self) -> None:
        """Find, in one query for all watched tickets, the sockets still behind what was committed two
        checks ago (a lost broadcast), and let only those replay: one read per place in a history."""
        members = self._all_members()
        positions = [
            (member, ticket_id, seq, staff)
            for member in members
            for ticket_id, (seq, staff) in member.positions().items()
        ]
        if not positions:
            return
        committed_before = self.committed[0] if len(self.committed) == CATCH_UP_GRACE_CHECKS else {}
        self.committed.append(await current_seqs({ticket_id for _, ticket_id, _, _ in positions}))
        behind: dict[tuple[str, bool, int], list[Member]] = {}
        for member, ticket_id, seq, staff in positions:
            earlier = committed_before.get(ticket_id)
            if earlier is not None and seq < earlier[0 if staff else 1]:
                behind.setdefault((ticket_id, staff, seq), []).append(member)
        for (ticket_id, _, seq), stragglers in behind.items():
            try:
                missed = await replay_missed(stragglers[0].party, ticket_id, since=seq)
            except NotFound:
                missed = None  # each socket finds out for itself (and is closed)
            for member in stragglers:
                await member.catch_up(ticket_id, missed)


current_seqs = database_sync_to_async(selectors.last_seqs)
touched_tickets = database_sync_to_async(selectors.tickets_touched_since)
replay_missed = database_sync_to_async(realtime.replay)
socket_refusals = database_sync_to_async(realtime.socket_refusals)
renew_slots = sync_to_async(throttling.socket_slots_renew, thread_sensitive=False)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalHub] = weakref.WeakKeyDictionary()


def hub() -> LocalHub:
    """This event loop's hub."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = LocalHub()
    return _hubs[loop]

"""WebSocket consumers: thin. They check who is connecting and what they may see (through the same
selectors as the API), join groups, and forward events in order with no gaps and no duplicates.

Every socket is accepted first and then, if refused, closed with a code the client can read:
4400 bad query, 4401 not authenticated or bad signature (also later, once the credential is revoked or the
session ends), 4403 no role or a foreign Origin (also later, once the party lost access), 4404 no such
ticket (or not visible to the caller), 4429 too many open sockets for this party or client address.
Frames from the client that are not a small JSON object get an `error` message, never a close.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts import throttling, ws_auth
from core import json_input
from core.errors import NotFound
from core.formats import iso_timestamp, parse_uuid
from core.parties import Party
from tickets import fanout, realtime
from tickets.metrics import websocket_connections

TYPING_MIN_INTERVAL_SECONDS = 2.0
# A viewer's "still here" at most this often (clients send one every 25 s; others forget a viewer after 60).
PRESENCE_MIN_INTERVAL_SECONDS = 5.0
# Frames one socket relays from another (never back to their sender).
_PEER_MESSAGE_TYPES = frozenset({realtime.TYPING_MESSAGE_TYPE, realtime.PRESENCE_MESSAGE_TYPE})
# Client frames are typing indicators: a few dozen bytes. Anything much larger is refused unread.
FRAME_MAX_CHARS = 4_096
FRAME_MAX_DEPTH = 4
_SINCE_RE = re.compile(r"[0-9]{1,10}")
SEQ_MAX = 2_147_483_647
logger = logging.getLogger(__name__)

replay_from_database = database_sync_to_async(realtime.replay)
last_seq_from_database = database_sync_to_async(realtime.last_seq_for)
claim_slot = sync_to_async(throttling.socket_slot_claim, thread_sensitive=False)
release_slot = sync_to_async(throttling.socket_slot_release, thread_sensitive=False)


class _EventForwarding(AsyncJsonWebsocketConsumer):
    """Forwards `ticket.event` messages in per-ticket seq order, filling any gap from the database. The
    process's fan-out hub delivers the messages, tells a socket to catch up when it is behind, and closes
    it when its credential or access is gone."""

    party: Party
    credential: ws_auth.SocketCredential
    groups_joined: list[str]
    last_seq: dict[str, int]
    ticket_id: str | None = None
    slot: tuple[str, str, str] | None = None
    # A stream's opening time: what it owes its client is every event created from then on.
    opened_at: datetime.datetime | None = None
    closing = False
    counted = False  # in the open-connections metric

    # Events reach sockets through this process's fan-out hub, not a channel of each socket's own.
    channel_layer_alias = "__per_process_hub__"
    # The `route` label of the open-connections metric.
    route_name: str

    # --- admission -----------------------------------------------------------------------------------

    async def _admit(self) -> bool:
        """Accept, then close with the handshake's refusal or the socket cap; say whether to go on."""
        await self.accept()
        websocket_connections.labels(self.route_name).inc()
        self.counted = True
        self.last_seq = {}
        self.send_lock = asyncio.Lock()
        self.member_id = uuid.uuid4().hex
        refusal = self.scope.get("refusal")
        party = self.scope.get("party")
        if refusal is not None or party is None:
            await self.refuse(refusal.code if refusal else ws_auth.CLOSE_UNAUTHENTICATED)
            return False
        self.party, self.credential = party, self.scope["credential"]
        client = self.scope.get("client") or ("unknown", 0)
        slot = (self.member_id, self.credential.identity, str(client[0]))
        if not await claim_slot(socket_id=slot[0], identity=slot[1], client_address=slot[2]):
            await self.refuse(ws_auth.CLOSE_TOO_MANY)
            return False
        self.slot = slot
        return True

    async def refuse(self, code: int) -> None:
        """Close with a documented code and stop delivering at once (the disconnect comes later)."""
        if self.closing:
            return
        self.closing = True
        await self._leave()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.counted:
            self.counted = False
            websocket_connections.labels(self.route_name).dec()
        await self._leave()
        if self.slot is not None:
            slot, self.slot = self.slot, None
            await release_slot(socket_id=slot[0], identity=slot[1], client_address=slot[2])

    async def _join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        for group in groups:
            await fanout.hub().join(group, self)

    async def _leave(self) -> None:
        groups, self.groups_joined = getattr(self, "groups_joined", []), []
        for group in groups:
            await fanout.hub().leave(group, self)

    # --- what the hub asks of a member ---------------------------------------------------------------

    def positions(self) -> dict[str, tuple[int, bool]]:
        return {ticket_id: (seq, self.party.sees_internal) for ticket_id, seq in self.last_seq.items()}

    async def catch_up(self, ticket_id: str, missed: list[dict[str, Any]] | None = None) -> None:
        await self._catch_up(ticket_id, missed)

    async def deliver(self, message: dict[str, Any], text: str) -> None:
        """Called by the fan-out hub with a group message and its payload already serialised."""
        if self.closing:
            return
        if message["type"] == realtime.EVENT_MESSAGE_TYPE:
            await self._forward(message["payload"], text)
        elif message["type"] in _PEER_MESSAGE_TYPES and message.get("sender") != self.member_id:
            await self.send(text_data=text)

    # --- ordering ------------------------------------------------------------------------------------

    async def _catch_up(self, ticket_id: str, missed: list[dict[str, Any]] | None = None) -> None:
        """Send, in order, every event of the ticket after the last one this socket sent (from `missed`
        when it was read for exactly this place, else from the database)."""
        async with self.send_lock:
            if self.closing:
                return
            since = self.last_seq.get(ticket_id, 0)
            try:
                if missed is None or (missed and missed[0]["seq"] > since + 1):
                    missed = await replay_from_database(self.party, ticket_id, since=since)
            except NotFound:  # the ticket is no longer visible to this party
                await self.refuse(ws_auth.CLOSE_FORBIDDEN)
                return
            for message in missed:
                if message["seq"] > self.last_seq.get(ticket_id, 0):
                    await self.send_json(message)
                    self.last_seq[ticket_id] = message["seq"]

    async def adopt(
        self, ticket_id: str, payload: dict[str, Any] | None = None, text: str | None = None
    ) -> None:
        """A stream's first event of a ticket (or the hub found a ticket changed that the stream never
        heard of): send first what it has missed of that ticket since it opened, then go on live."""
        if ticket_id in self.last_seq:
            if payload is not None:
                await self._forward(payload, text)
            return
        try:
            missed = await replay_from_database(self.party, ticket_id, since=0, created_from=self.opened_at)
        except NotFound:
            return
        async with self.send_lock:
            if self.closing:
                return
            for message in missed:
                if message["seq"] > self.last_seq.get(ticket_id, 0):
                    await self.send_json(message)
                    self.last_seq[ticket_id] = message["seq"]
            if payload is not None and payload["seq"] > self.last_seq.get(ticket_id, 0):
                await self.send(text_data=text) if text is not None else await self.send_json(payload)
                self.last_seq[ticket_id] = payload["seq"]

    async def _forward(self, payload: dict[str, Any], text: str | None = None) -> None:
        ticket_id, seq = payload["ticket_id"], payload["seq"]
        known = self.last_seq.get(ticket_id)
        if known is None and self.opened_at is not None and seq > 1:
            # A stream meeting a ticket mid-history: an earlier event since it opened may have been lost
            # (a Redis restart, a dropped broadcast); the database has them.
            await self.adopt(ticket_id, payload, text)
            return
        if known is not None and seq <= known:
            return  # already sent (replayed, or delivered twice)
        if known is not None and seq > known + 1:
            # Broadcasts from different processes can overtake each other; the database has them all.
            await self._catch_up(ticket_id)
            return
        async with self.send_lock:
            if seq > self.last_seq.get(ticket_id, 0) or known is None:
                await self.send(text_data=text) if text is not None else await self.send_json(payload)
                self.last_seq[ticket_id] = seq

    # --- client frames -------------------------------------------------------------------------------

    def _frame(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "ticket_id": self.ticket_id,
            "seq": None,
            "data": data,
            "timestamp": iso_timestamp(timezone.now()),
        }

    async def send_error(self, message: str) -> None:
        await self.send_json(self._frame("error", {"error": message}))

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Decode a client frame strictly; anything but a small JSON object gets an `error` message."""
        if self.closing:
            return
        if text_data is None:
            await self.send_error("Send JSON text frames, not binary ones.")
            return
        if len(text_data) > FRAME_MAX_CHARS:
            await self.send_error(f"Frames are at most {FRAME_MAX_CHARS} characters.")
            return
        try:
            content = json_input.loads(text_data, max_depth=FRAME_MAX_DEPTH)
        except json_input.JsonRefused as refused:
            await self.send_error(f"Not an acceptable JSON frame: {refused}")
            return
        await self.receive_json(content)


class TicketUpdatesConsumer(_EventForwarding):
    """`/api/v1/tickets/{id}/updates[?since=SEQ]`: one ticket's events, then typing indicators."""

    route_name = "ticket"
    present = False  # announced to the other staff viewers, who are told when it leaves

    async def connect(self) -> None:
        if not await self._admit():
            return
        party = self.party
        _, params = ws_auth.query_params(self.scope)
        since_text = params.get("since")
        if since_text is not None and (not _SINCE_RE.fullmatch(since_text) or int(since_text) > SEQ_MAX):
            await self.refuse(ws_auth.CLOSE_BAD_REQUEST)
            return
        ticket_uuid = parse_uuid(self.scope["url_route"]["kwargs"]["ticket_id"])
        if ticket_uuid is None:
            await self.refuse(ws_auth.CLOSE_NOT_FOUND)
            return
        # One name per ticket (canonical, lowercase) for the group, the positions and every frame.
        ticket_id = self.ticket_id = str(ticket_uuid)
        try:
            # Visibility first: an invisible ticket is closed on before any group is joined.
            await last_seq_from_database(party, ticket_id)
        except NotFound:
            await self.refuse(ws_auth.CLOSE_NOT_FOUND)
            return
        self.last_typing = 0.0
        # Join first, then read the database: anything committed from here on arrives live, anything
        # before is in the replay; `_forward` drops the overlap by seq.
        await self._join([realtime.ticket_group(ticket_id, staff=party.sees_internal)])
        if since_text is None:
            try:
                self.last_seq[ticket_id] = await last_seq_from_database(party, ticket_id)
            except NotFound:  # lost from sight between the first read and the join: as `_catch_up` does
                await self.refuse(ws_auth.CLOSE_FORBIDDEN)
                return
        else:
            self.last_seq[ticket_id] = int(since_text)
            await self._catch_up(ticket_id)
        self.last_presence = 0.0
        if party.sees_internal:
            self.present = True
            await self._announce_presence("joined")

    async def disconnect(self, code: int) -> None:
        # Leave the hub first (its last member stops it, and with it the channel layer's receive), then say
        # goodbye: the announcement goes through the channel layer, not through the hub.
        await super().disconnect(code)
        if self.present:
            self.present = False
            await self._announce_presence("left", force=True)

    async def _announce_presence(self, state: str, *, force: bool = False) -> None:
        """Tell the other provider and support viewers of the ticket who has it open (`joined`, `here`,
        `left`): collision detection. Customers neither receive nor send these."""
        if state == "here":
            now = time.monotonic()
            if not force and now - self.last_presence < PRESENCE_MIN_INTERVAL_SECONDS:
                return
            self.last_presence = now
        group = realtime.ticket_group(self.ticket_id, staff=True)
        payload = self._frame(
            "presence",
            {
                "viewer": self.member_id,
                "user": self.party.label,
                "user_type": self.party.kind.value,
                "state": state,
            },
        )
        message = {
            "type": realtime.PRESENCE_MESSAGE_TYPE,
            "group": group,
            "payload": payload,
            "sender": self.member_id,
        }
        await get_channel_layer().group_send(group, message)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "presence" and self.party.sees_internal:
            await self._announce_presence("here")
            return
        if kind != "typing":
            await self.send_error(
                'Only {"type": "typing"} (and, for staff, {"type": "presence"}) may be sent.'
            )
            return
        now = time.monotonic()
        if now - self.last_typing < TYPING_MIN_INTERVAL_SECONDS:
            return  # rate limit: one indicator per interval per socket
        self.last_typing = now
        internal = content.get("internal") is True and self.party.sees_internal
        payload = self._frame(
            "typing", {"user": self.party.label, "user_type": self.party.kind.value, "internal": internal}
        )
        # Someone typing an internal note must not show up on the customer's screen.
        groups = [realtime.ticket_group(self.ticket_id, staff=True)]
        if not internal:
            groups.append(realtime.ticket_group(self.ticket_id, staff=False))
        layer = get_channel_layer()
        for group in groups:
            message = {
                "type": realtime.TYPING_MESSAGE_TYPE,
                "group": group,
                "payload": payload,
                "sender": self.member_id,
            }
            await layer.group_send(group, message)


class UpdatesStreamConsumer(_EventForwarding):
    """`/api/v1/updates`: live events of every ticket the caller may see (no replay: resync a ticket
    with `/tickets/{id}/events?since=` or its own socket's `?since=`)."""

    route_name = "updates"

    async def connect(self) -> None:
        if not await self._admit():
            return
        self.opened_at = timezone.now()
        groups = realtime.stream_groups(self.party)
        if not groups:
            await self.refuse(ws_auth.CLOSE_FORBIDDEN)
            return
        await self._join(groups)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_error("This stream is receive-only.")


class NoSuchSocketConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: accepted and closed with 4404, like the API's JSON 404."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=ws_auth.CLOSE_NOT_FOUND)

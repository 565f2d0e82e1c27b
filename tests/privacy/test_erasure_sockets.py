"""Sockets after an erasure: a replay from the start serves tombstones only, and the erasure itself is
broadcast live as a `content_erased` event."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from privacy.erasure import person_erase
from tests.conftest import Apis, World
from tests.privacy import scenario
from tests.privacy.scenario import SECRETS
from tests.sockets import BROWSER, session_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _cookie(user_id: int | None) -> tuple[bytes, bytes]:
    return (b"cookie", f"sessionid={session_client(user_id).cookies['sessionid'].value}".encode())


async def _socket(path: str, user_id: int | None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, path, headers=[*BROWSER, await sync_to_async(_cookie)(user_id)]
    )
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    return communicator


async def _frames(communicator: WebsocketCommunicator, quiet: float = 1.0) -> list[dict]:
    frames = []
    while not await communicator.receive_nothing(timeout=quiet):
        frames.append(await communicator.receive_json_from(timeout=1))
    return [frame for frame in frames if frame.get("type") not in ("typing", "presence")]


async def test_replay_after_erasure_serves_tombstones_and_the_erasure_is_broadcast(
    keyed_world: World, apis: Apis, tmp_path, settings
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    story = await sync_to_async(scenario.build)(keyed_world, apis)
    path = f"/api/v1/tickets/{story.ticket.pk}/updates"
    live = await _socket(path, keyed_world.provider_a_member.user_id)
    await _frames(live, quiet=0.5)  # whatever was queued before

    await sync_to_async(person_erase)(
        actor=keyed_world.agent,
        address=keyed_world.alice.address,
        reason="Asked to be forgotten",
        confirm=keyed_world.alice.address,
    )
    broadcast = await _frames(live)
    await live.disconnect()
    assert [frame["type"] for frame in broadcast if frame.get("ticket_id") == str(story.ticket.pk)] == [
        "content_erased"
    ]

    replay = await _socket(f"{path}?since=0", keyed_world.agent.user_id)
    replayed = await _frames(replay)
    await replay.disconnect()
    text = json.dumps(replayed)
    assert [secret for secret in SECRETS if secret in text] == []
    assert scenario.PROVIDER_TEXT in text
    assert "content_erased" in text

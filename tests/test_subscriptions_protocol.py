"""graphql-transport-ws hygiene, frame by frame with a plain ``websockets`` client.

Login in ``connection_init`` (4403 when refused), ``subscribe`` before the ack (4401), the init
timeout (4408), the Origin check on the upgrade, no legacy ``graphql-ws``, the server's pings, the
cap on subscriptions per connection, and cursors the log cannot serve.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from tests.e2e import SandboxServer, e2e_dir, redis_db_url, sandbox, write_channels_file  # noqa: F401  (fixtures)
from tests.realtime import Writer, live_gateway, token

DB = 14  # outside tests.e2e.SCRATCH_DBS
PROTOCOL = "graphql-transport-ws"
SUBSCRIBE = "subscription($after: String) { caseEvents(after: $after) { cursor type } }"


@pytest.fixture(scope="module")
def db_url(redis_url: str) -> str:
    return redis_db_url(redis_url, DB)


@pytest.fixture(scope="module")
def live(db_url: str, sandbox: SandboxServer, e2e_dir: Path) -> Iterator[tuple[str, Starlette]]:  # noqa: F811
    directory = e2e_dir / "subscriptions-protocol"
    directory.mkdir(exist_ok=True)
    channels_file = write_channels_file(directory, sandbox.url, poll_interval=60)
    with live_gateway(db_url, channels_file, sandbox.url, ws_init_timeout=2.0, ws_keepalive=0.5,
                      ws_max_subscriptions=2, allowed_origins_list="https://dashboard.example.cn",
                      events_maxlen=3) as served:
        yield served


@pytest.fixture(scope="module")
def center(live: tuple[str, Starlette]) -> str:
    return token(live[0], "center")


def ws_url(live: tuple[str, Starlette]) -> str:
    return live[0].replace("http", "ws") + "/graphql"


@pytest.fixture
async def socket(live: tuple[str, Starlette]) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(ws_url(live), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        yield ws


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, *, skip_pings: bool = True) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv(decode=True))
        if not (skip_pings and message.get("type") == "ping"):
            return dict(message)


async def closed_with(ws: ClientConnection) -> int | None:
    """The close code the server sent, once the socket is closed (messages before it are dropped)."""
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def init(ws: ClientConnection, bearer: str) -> None:
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}})
    assert (await receive(ws))["type"] == "connection_ack"


async def test_init_without_a_valid_token_is_forbidden(live: tuple[str, Starlette]) -> None:
    for payload in ({}, {"Authorization": "Bearer not-a-token"}):
        async with websockets.connect(ws_url(live), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
            await send(ws, {"type": "connection_init", "payload": payload})
            assert await closed_with(ws) == 4403


async def test_subscribe_before_the_ack_is_unauthorized(socket: ClientConnection) -> None:
    await send(socket, {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    assert await closed_with(socket) == 4401


async def test_a_silent_connection_is_closed_after_the_init_timeout(socket: ClientConnection) -> None:
    assert await closed_with(socket) == 4408


async def test_the_upgrade_checks_the_origin(live: tuple[str, Starlette], center: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url(live), subprotocols=[PROTOCOL],  # type: ignore[list-item]
                                      origin="https://evil.example.com"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(ws_url(live), subprotocols=[PROTOCOL],  # type: ignore[list-item]
                                  origin="https://dashboard.example.cn") as ws:  # type: ignore[arg-type]
        await init(ws, center)


async def test_the_legacy_protocol_is_not_spoken(live: tuple[str, Starlette]) -> None:
    async with websockets.connect(ws_url(live), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol != "graphql-ws"
        assert await closed_with(ws) == 4406


async def test_the_server_pings_and_closes_a_peer_that_stops_answering(socket: ClientConnection,
                                                                       center: str) -> None:
    await init(socket, center)
    assert await receive(socket, skip_pings=False) == {"type": "ping"}
    await send(socket, {"type": "pong"})
    assert await receive(socket, skip_pings=False) == {"type": "ping"}, "answered: still pinged"
    assert await closed_with(socket) == 4499, "unanswered: closed"


async def test_subscriptions_per_connection_are_capped(socket: ClientConnection, center: str) -> None:
    await init(socket, center)
    for n in ("1", "2", "3"):
        await send(socket, {"id": n, "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    refused = await receive(socket)
    assert (refused["id"], refused["type"]) == ("3", "error")
    assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_cursors_the_log_cannot_serve(live: tuple[str, Starlette], center: str, db_url: str) -> None:
    writer = Writer(db_url)
    try:
        for _ in range(5):
            await writer.case()
        oldest = (await writer.events.read(count=1))[0][0]
        writer.events.maxlen = 3
        await writer.events.trim()  # retention (MINSHENG_EVENTS_MAXLEN=3 here) removed the oldest two
    finally:
        await writer.aclose()
    async with websockets.connect(ws_url(live), subprotocols=[PROTOCOL]) as socket:  # type: ignore[list-item]
        await init(socket, center)
        await _expect_refusals(socket, oldest)


async def _expect_refusals(socket: ClientConnection, oldest: str) -> None:
    for n, after, code in (("1", oldest, "CURSOR_EXPIRED"), ("2", "yesterday", "BAD_USER_INPUT")):
        await send(socket, {"id": n, "type": "subscribe", "payload": {"query": SUBSCRIBE,
                                                                     "variables": {"after": after}}})
        answer = await receive(socket)
        while answer["type"] == "complete":  # the previous operation's end
            answer = await receive(socket)
        assert answer["id"] == n
        errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
        assert errors[0].get("extensions", {}).get("code") == code, answer

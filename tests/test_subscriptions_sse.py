"""``caseEvents`` over Server-Sent Events (graphql-sse, distinct connections mode)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from resolvers.ids import encode_global_id
from tests.e2e import SandboxServer, e2e_dir, redis_db_url, sandbox, write_channels_file  # noqa: F401  (fixtures)
from tests.realtime import (
    EVENT_FIELDS,
    RefClient,
    Writer,
    live_gateway,
    reference_clients,  # noqa: F401  (fixture)
    subscribers,
    token,
    wait_for,
)

DB = 15  # outside tests.e2e.SCRATCH_DBS
SUBSCRIPTION = f"subscription($after: String) {{ caseEvents(after: $after) {{ {EVENT_FIELDS} }} }}"


@pytest.fixture(scope="module")
def db_url(redis_url: str) -> str:
    return redis_db_url(redis_url, DB)


@pytest.fixture(scope="module")
def live(db_url: str, sandbox: SandboxServer, e2e_dir: Path) -> Iterator[tuple[str, Starlette]]:  # noqa: F811
    directory = e2e_dir / "subscriptions-sse"
    directory.mkdir(exist_ok=True)
    channels_file = write_channels_file(directory, sandbox.url, poll_interval=60)
    with live_gateway(db_url, channels_file, sandbox.url) as served:
        yield served


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[Writer]:
    w = Writer(db_url)
    yield w
    await w.aclose()


async def read_events(response: httpx.Response, n: int) -> list[dict[str, Any]]:
    """The next ``n`` SSE ``next`` events as ``{"id": …, "data": …}``."""
    found: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith(("event:", "id:", "data:")):
            name, _, value = line.partition(":")
            event[name] = value.strip()
        elif not line and event:
            if event.get("event") == "next":
                found.append({"id": event.get("id"), "data": json.loads(event["data"])})
            event = {}
            if len(found) == n:
                return found
    raise AssertionError(f"the stream ended after {len(found)} of {n} events")


async def test_the_reference_client_receives_live_events(live: tuple[str, Starlette], writer: Writer,
                                                         reference_clients: Path) -> None:  # noqa: F811
    url, app = live
    client = await RefClient.start(reference_clients, "sse", f"{url}/graphql", token(url, "center"),
                                   SUBSCRIPTION)
    try:
        await wait_for(lambda: subscribers(app) == 1, what="the SSE subscription")
        key = await writer.case()
        [event] = await client.events(1)
        assert event["type"] == "CASE_CREATED"
        assert event["caseIds"] == [encode_global_id("Case", key)]
    finally:
        await client.close()
    await wait_for(lambda: subscribers(app) == 0, what="the subscription released")


async def test_last_event_id_resumes_exactly_after_it(live: tuple[str, Starlette], writer: Writer) -> None:
    url, app = live
    headers = {"Authorization": f"Bearer {token(url, 'yutang')}", "Accept": "text/event-stream"}
    body = {"query": SUBSCRIPTION}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        async with http.stream("POST", "/graphql", json=body, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            await wait_for(lambda: subscribers(app) == 1, what="the stream's subscription")
            await writer.case(street="光明街道", community="东周社区")  # not yutang's: never sent
            first = await writer.case()
            [seen] = await read_events(response, 1)
        assert seen["data"]["data"]["caseEvents"]["caseIds"] == [encode_global_id("Case", first)]
        await wait_for(lambda: subscribers(app) == 0, what="the closed stream's subscription released")
        missed = [await writer.case() for _ in range(2)]
        resumed = {**headers, "Last-Event-ID": seen["id"]}
        async with http.stream("POST", "/graphql", json=body, headers=resumed) as response:
            got = await read_events(response, 2)
    assert [e["data"]["data"]["caseEvents"]["caseIds"][0] for e in got] == [
        encode_global_id("Case", key) for key in missed]
    assert [e["id"] for e in got] == [e["data"]["data"]["caseEvents"]["cursor"] for e in got]
    await wait_for(lambda: subscribers(app) == 0, what="every stream released")


async def test_event_streams_need_a_login_and_a_valid_request(live: tuple[str, Starlette]) -> None:
    url, _app = live
    stream = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        refused = await http.post("/graphql", json={"query": SUBSCRIPTION}, headers=stream)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        headers = {**stream, "Authorization": f"Bearer {token(url, 'center')}"}
        broken = await http.post("/graphql", json={"query": "subscription { nope }"}, headers=headers)
        assert broken.status_code == 400
        assert broken.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        foreign = await http.post("/graphql", json={"query": SUBSCRIPTION},
                                  headers={**headers, "Origin": "https://evil.example.com"})
        assert foreign.status_code == 403

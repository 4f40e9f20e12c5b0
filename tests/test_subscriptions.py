"""``caseEvents`` through the reference graphql-ws client (node): live, resume, rights, replicas, leaks."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from casework.clusters import ClusterStore
from casework.eventfeed import Tap
from resolvers.ids import encode_global_id
from tests.e2e import SandboxServer, e2e_dir, redis_db_url, sandbox, write_channels_file  # noqa: F401  (fixtures)
from tests.realtime import (
    CITIZEN_PHONE,
    EVENT_FIELDS,
    RefClient,
    Writer,
    live_gateway,
    reference_clients,  # noqa: F401  (fixture)
    subscribers,
    token,
    wait_for,
)

DB = 13  # outside tests.e2e.SCRATCH_DBS: this module's own database
SUBSCRIPTION = f"""subscription($filter: CaseEventFilter, $after: String) {{
  caseEvents(filter: $filter, after: $after) {{ {EVENT_FIELDS} case {{ title }} }} }}"""


@pytest.fixture(scope="module")
def db_url(redis_url: str) -> str:
    return redis_db_url(redis_url, DB)


@pytest.fixture(scope="module")
def channels_file(sandbox: SandboxServer, e2e_dir: Path) -> Path:  # noqa: F811
    directory = e2e_dir / "subscriptions"
    directory.mkdir(exist_ok=True)
    return write_channels_file(directory, sandbox.url, poll_interval=60)


@pytest.fixture(scope="module")
def live(db_url: str, channels_file: Path, sandbox: SandboxServer) -> Iterator[tuple[str, Starlette]]:  # noqa: F811
    with live_gateway(db_url, channels_file, sandbox.url) as served:
        yield served


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[Writer]:
    w = Writer(db_url)
    yield w
    await w.aclose()


class Clients:
    """Reference clients of one test, all killed at its end."""

    def __init__(self, script: Path, url: str, app: Starlette) -> None:
        self.script, self.url, self.app = script, url, app
        self.started: list[RefClient] = []
        self.tokens: dict[str, str] = {}

    async def subscribe(self, username: str, *, after: str | None = None,
                        filter: dict[str, Any] | None = None, url: str | None = None,
                        app: Starlette | None = None) -> RefClient:
        """A subscription as ``username``, returned once the gateway has registered it."""
        url, app = url or self.url, app or self.app
        before = subscribers(app)
        if f"{url}|{username}" not in self.tokens:
            self.tokens[f"{url}|{username}"] = token(url, username)
        client = await RefClient.start(self.script, "ws", f"{url.replace('http', 'ws')}/graphql",
                                       self.tokens[f"{url}|{username}"], SUBSCRIPTION,
                                       {"after": after, "filter": filter})
        self.started.append(client)
        await wait_for(lambda: subscribers(app) > before, what=f"{username}'s subscription")
        return client

    async def close(self) -> None:
        for client in self.started:
            await client.close()


@pytest.fixture
async def clients(reference_clients: Path, live: tuple[str, Starlette]) -> AsyncIterator[Clients]:  # noqa: F811
    group = Clients(reference_clients, *live)
    yield group
    await group.close()
    await wait_for(lambda: subscribers(live[1]) == 0, what="every subscriber released")


def case_id(key: str) -> str:
    return encode_global_id("Case", key)


async def test_a_change_reaches_the_subscriber_live(clients: Clients, writer: Writer) -> None:
    client = await clients.subscribe("center")
    key = await writer.case()
    [event] = await client.events(1)
    assert event["type"] == "CASE_CREATED"
    assert event["caseIds"] == [case_id(key)]
    assert event["case"] == {"title": "小区门口占道经营"}
    assert event["channels"] == ["hotline12345"]
    dispatched = await writer.dispatch(key, "dept-labor")
    [event] = await client.events(1)
    assert (event["type"], event["cursor"]) == ("ASSIGNMENT_DISPATCHED", dispatched)
    assert event["status"] == "DISPATCHED"
    assert event["departmentIds"] == [encode_global_id("Department", "dept-labor")]


async def test_resume_after_a_disconnect_sees_every_event_exactly_once(clients: Clients,
                                                                       writer: Writer) -> None:
    first = await clients.subscribe("center")
    for _ in range(3):
        await writer.case()
    seen = await first.events(3)
    first.kill()  # vanishes without a word
    await wait_for(lambda: subscribers(clients.app) == 0, what="the vanished client released")
    missed = [await writer.case() for _ in range(4)]

    async def keep_writing() -> list[str]:  # changes while the client reconnects: the hand-over must not gap
        return [await writer.case() for _ in range(20)]

    writing = asyncio.create_task(keep_writing())
    second = await clients.subscribe("center", after=seen[-1]["cursor"])
    during = await writing
    after = [await writer.case() for _ in range(2)]
    expected = [case_id(k) for k in missed + during + after]
    got = await second.events(len(expected))
    assert [e["caseIds"][0] for e in got] == expected, "every event once, in order"
    cursors = [e["cursor"] for e in got]
    assert len(set(cursors)) == len(cursors)
    assert await second.silent(), "and nothing twice"


async def test_rights_are_checked_for_every_event(clients: Clients, writer: Writer) -> None:
    yutang = await clients.subscribe("yutang")
    labor = await clients.subscribe("labor")
    citizen = await clients.subscribe("citizen")
    in_yutang = await writer.case()                                        # e1: yutang
    elsewhere = await writer.case(street="光明街道", community="东周社区")     # e2: nobody of the three
    e3 = await writer.events.append("assignment.dispatched",
                                    _dispatch(elsewhere, "dept-labor", "440311001002"))  # labor
    e4 = await writer.dispatch(in_yutang, "dept-water")                     # yutang (its region)
    own_elsewhere = await writer.case(street="光明街道", community="东周社区", phone=CITIZEN_PHONE)  # citizen
    own_yutang = await writer.case(phone=CITIZEN_PHONE)                    # yutang, citizen
    e7 = await writer.dispatch(own_yutang, "dept-labor")                   # yutang, labor
    assert [e["caseIds"][0] for e in await yutang.events(4)] == [case_id(k) for k in (
        in_yutang, in_yutang, own_yutang, own_yutang)]
    assert [e["cursor"] for e in await labor.events(2)] == [e3, e7]
    assert [e["caseIds"][0] for e in await citizen.events(2)] == [case_id(own_elsewhere), case_id(own_yutang)]
    assert e4
    for client in (yutang, labor, citizen):
        assert await client.silent(), "nothing beyond its rights"


def _dispatch(key: str, department: str, region: str) -> dict[str, str]:
    from casework.events import event_fields

    return event_fields(cases=[key], departments=[department], regions=[region], channels=["hotline12345"],
                        status="DISPATCHED")


async def test_filters_by_department_region_channel_and_type(clients: Clients, writer: Writer) -> None:
    by_department = await clients.subscribe(
        "center", filter={"departmentIds": [encode_global_id("Department", "dept-labor")]})
    by_street = await clients.subscribe("center", filter={"regionId": encode_global_id("Region", "440311005"),
                                                          "types": ["CASE_CREATED"]})
    by_channel = await clients.subscribe("center", filter={"channels": ["mayor"]})
    a = await writer.case()
    await writer.case(street="光明街道", community="东周社区")
    b = await writer.case(channel="mayor")
    c = await writer.dispatch(a, "dept-labor")
    assert [e["cursor"] for e in await by_department.events(1)] == [c]
    assert [e["caseIds"][0] for e in await by_street.events(2)] == [case_id(a), case_id(b)]
    assert [e["caseIds"][0] for e in await by_channel.events(1)] == [case_id(b)]
    for client in (by_department, by_street, by_channel):
        assert await client.silent()


async def test_two_replicas_on_one_redis_both_deliver(clients: Clients, writer: Writer, db_url: str,
                                                      channels_file: Path, sandbox: SandboxServer) -> None:  # noqa: F811
    with live_gateway(db_url, channels_file, sandbox.url) as (url2, app2):
        one = await clients.subscribe("center")
        two = await clients.subscribe("center", url=url2, app=app2)
        key = await writer.case()
        [a], [b] = await one.events(1), await two.events(1)
        assert a["cursor"] == b["cursor"]
        assert a["caseIds"] == b["caseIds"] == [case_id(key)]
        await two.close()
        await wait_for(lambda: subscribers(app2) == 0, what="the second replica's subscriber released")


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_clients_that_vanish_leave_nothing_behind(clients: Clients, writer: Writer,
                                                        live: tuple[str, Starlette]) -> None:
    _url, app = live
    taps_before = _live(Tap)
    vanishing = [await clients.subscribe("center") for _ in range(5)]
    assert subscribers(app) == 5
    assert _live(Tap) == taps_before + 5
    for client in vanishing:
        client.kill()
    await wait_for(lambda: subscribers(app) == 0, what="the vanished clients' subscribers released")
    await writer.case()  # an event after they left reaches nobody and is held for nobody
    await wait_for(lambda: _live(Tap) == taps_before, what="their queues collected")
    handlers = [o for o in gc.get_objects() if type(o).__name__ == "GraphQLTransportWSHandler"]
    assert all(not h.operations for h in handlers), "no operation of a dead connection is left running"


async def test_a_dispatch_reaches_the_department_live(clients: Clients, writer: Writer) -> None:
    url = clients.url
    headers = {"Authorization": f"Bearer {token(url, 'center')}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        introspect = {"query": '{ __type(name: "Mutation") { fields { name } } }'}
        fields = (await http.post("/graphql", json=introspect)).json()["data"]["__type"]
        if not fields or "dispatchCluster" not in {f["name"] for f in fields["fields"]}:
            pytest.skip("Mutation.dispatchCluster is not in the graph yet (issue 5)")
        labor = await clients.subscribe("labor", filter={"types": ["ASSIGNMENT_DISPATCHED"]})
        key = await writer.case()
        clusters = ClusterStore(writer.redis, writer.store, writer.store.reference, events=writer.events)
        await clusters.assign(key)
        answer = await http.post("/graphql", json={"query": DISPATCH, "variables": {
            "cluster": case_id(key), "department": encode_global_id("Department", "dept-labor")}})
        assert not answer.json().get("errors"), answer.json()
    [event] = await labor.events(1)
    assert event["type"] == "ASSIGNMENT_DISPATCHED"
    assert case_id(key) in event["caseIds"]
    assert event["departmentIds"] == [encode_global_id("Department", "dept-labor")]


DISPATCH = """mutation($cluster: ID!, $department: ID) {
  dispatchCluster(input: { clusterId: $cluster, departmentId: $department }) { __typename } }"""

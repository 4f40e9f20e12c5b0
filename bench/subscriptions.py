"""1,000 concurrent ``caseEvents`` subscribers over graphql-transport-ws at 100 events/s.

The subscribers are department systems: each filters on one of 50 departments (20 per department),
and each event is an ``assignment.dispatched`` to one department, appended to the event log by this
process as a dispatch would be. Latency runs from the append (the change) to the client having the
message; memory per subscriber is the gateway's resident-memory growth divided by the subscribers.
A second, smaller run has every subscriber receive every event (a dashboard-style fan-out).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import websockets

from bench.harness import Stack
from bench.query import _cpu_seconds as cpu_seconds
from casework.events import ASSIGNMENT_DISPATCHED, EventLog, event_fields
from resolvers.ids import encode_global_id

QUERY = """subscription($filter: CaseEventFilter) {
  caseEvents(filter: $filter) { cursor type at departmentIds } }"""
DEPARTMENTS = [f"bench-dept-{n:02d}" for n in range(50)]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    errors: int = 0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _subscriber(url: str, token: str, department: str | None, tally: Tally, ready: asyncio.Event,
                      counter: list[int], total: int) -> None:
    # Only the bench's own events: the gateway's intake keeps adding case events from the sandbox.
    variables: dict[str, Any] = {"filter": {"types": ["ASSIGNMENT_DISPATCHED"]}}
    if department:
        variables["filter"]["departmentIds"] = [encode_global_id("Department", department)]
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                                  max_queue=None, ping_interval=None, open_timeout=60) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY,
                                                                              "variables": variables}}))
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        async for raw in ws:  # until the run cancels this task
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "ping":
                await ws.send('{"type":"pong"}')
            elif message["type"] == "next":
                event = (message["payload"].get("data") or {}).get("caseEvents")
                if event is None:
                    tally.errors += 1
                    continue
                tally.received += 1
                tally.latencies.append(now - datetime.fromisoformat(event["at"]).timestamp())
            elif message["type"] in ("error", "complete"):
                tally.errors += 1
                return


async def _publish(redis_url: str, rate: float, seconds: float) -> int:
    client = aioredis.from_url(redis_url)
    events = EventLog(client)
    sent = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            department = DEPARTMENTS[sent % len(DEPARTMENTS)]
            await events.append(ASSIGNMENT_DISPATCHED, event_fields(
                cases=[f"bench:{sent}"], departments=[department], channels=["hotline12345"],
                at=datetime.now(UTC), status="DISPATCHED"))
            sent += 1
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    finally:
        await client.aclose()
    return sent


async def _drained(tally: Tally, expected: int, seconds: float) -> None:
    """Wait until every delivery arrived, or ``seconds`` passed without progress."""
    last, idle = tally.received, 0.0
    while tally.received < expected and idle < seconds:
        await asyncio.sleep(0.25)
        idle = 0.0 if tally.received > last else idle + 0.25
        last = tally.received


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _scenario(running: Stack, *, subscribers: int, rate: float, seconds: float,
                    filtered: bool) -> dict[str, Any]:
    url = running.gateway_url.replace("http", "ws") + "/graphql"
    tally, ready, counter = Tally(), asyncio.Event(), [0]
    rss_before = _rss_kib(running.gateway_pid)
    tasks = []
    for n in range(subscribers):
        department = DEPARTMENTS[n % len(DEPARTMENTS)] if filtered else None
        tasks.append(asyncio.create_task(_subscriber(url, running.token, department, tally, ready, counter,
                                                     subscribers)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # do not open a thousand handshakes in one burst
    await asyncio.wait_for(ready.wait(), timeout=180)
    await asyncio.sleep(2.0)  # the last subscribe messages reach the feed
    rss_with = _rss_kib(running.gateway_pid)

    def expected_of(sent: int) -> int:
        return sent * (subscribers // len(DEPARTMENTS) if filtered else subscribers)

    cpu_before, wall_before = cpu_seconds(running.gateway_pid), time.monotonic()
    sent = await _publish(running.redis_url, rate, seconds)
    publish_seconds = time.monotonic() - wall_before
    await _drained(tally, expected_of(sent), seconds=10.0)
    cpu = cpu_seconds(running.gateway_pid) - cpu_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = expected_of(sent)
    return {
        "subscribers": subscribers, "events_per_second": rate, "seconds": seconds, "events": sent,
        "events_per_second_achieved": round(sent / publish_seconds, 1),
        "each_event_reaches": (f"the {subscribers // len(DEPARTMENTS)} subscribers of its department"
                               if filtered else "every subscriber"),
        "deliveries_expected": expected, "deliveries_received": tally.received, "errors": tally.errors,
        "latency_ms_p50": round(statistics.median(tally.latencies) * 1000, 1) if tally.latencies else None,
        "latency_ms_p99": round(_percentile(tally.latencies, 0.99) * 1000, 1) if tally.latencies else None,
        "gateway_cpu_ms_per_delivery": round(cpu * 1000 / max(1, tally.received), 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "gateway_rss_mib_before": round(rss_before / 1024, 1),
        "memory_kib_per_subscriber": round((rss_with - rss_before) / subscribers, 1),
    }


def run(running: Stack) -> dict[str, Any]:
    """Figures for ``make bench``."""
    departments = asyncio.run(_scenario(running, subscribers=1000, rate=100, seconds=20, filtered=True))
    fan_out = asyncio.run(_scenario(running, subscribers=200, rate=20, seconds=10, filtered=False))
    return {"department_systems": departments, "dashboard_fan_out": fan_out,
            "note": "change → client: XADD by the bench to the message parsed by a websockets client in the "
                    "bench process; gateway, Redis, sandbox and clients share the machine's cores"}

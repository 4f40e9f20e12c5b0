"""``Case.source``: typed per channel, batched per channel, cached, and partial when a channel is down."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

from casework import keys
from connectors import registry
from gateway.channels import load_channels
from gateway.settings import DEFAULT_CHANNELS_FILE, Settings
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import (
    CHANNELS,
    SCRATCH_DBS,
    Graph,
    SandboxServer,
    gateway_settings,
    redis_db_url,
    start_gateway,
    write_channels_file,
)

PAGE = """query($first: Int!, $filter: CaseFilter) {
  cases(first: $first, filter: $filter) {
    nodes { id sourceId channel { key }
            source { __typename ... on SourceRecord { sourceId fetchedAt stale } } }
  } }"""
TYPE_NAMES = {"hotline12345": "Hotline12345Source", "mayor": "MayorSource", "court": "CourtSource",
              "legalaid": "LegalAidSource", "petition": "PetitionSource", "open311": "Open311Source",
              "shuji": "DeclarativeSource", "juzhang": "DeclarativeSource"}


def _flush_source_cache(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter(match=keys.SOURCE_CACHE_SCAN_PATTERN, count=1000))
    if stale:
        client.delete(*stale)
    client.close()


def _record_calls(sandbox: SandboxServer) -> Counter[str]:
    """Requests per channel to anything but token endpoints (the OAuth token fetch is not a record call)."""
    counts: Counter[str] = Counter()
    for channel in CHANNELS:
        stats = httpx.get(f"{sandbox.url}/{channel}/__sandbox/stats").json()["requests"]
        counts[channel] = sum(n for endpoint, n in stats.items() if "token" not in endpoint.lower())
    return counts


def _batch_limit(channel: str) -> int:
    """The channel's batch limit as its connector describes it (declarative ones read it from their spec)."""
    configs = load_channels(DEFAULT_CHANNELS_FILE, Settings(port=1).interpolation())
    config = next(c for c in configs if c.key == channel)
    return registry.load(config.connector)(config).describe().capabilities.batch_limit


def test_sources_are_typed_per_channel(graph: Graph) -> None:
    aliases = "\n".join(f'{key}: cases(filter: {{channels: ["{key}"]}}, first: 2) {{ nodes {{ sourceId '
                        f'source {{ __typename ... on SourceRecord {{ sourceId fetchedAt stale }} }} }} }}'
                        for key in CHANNELS)
    data = graph.data(f"{{ {aliases} }}")
    for key in CHANNELS:
        for case in data[key]["nodes"]:
            assert case["source"]["__typename"] == TYPE_NAMES[key]
            assert case["source"]["sourceId"] == case["sourceId"]
            assert case["source"]["stale"] is False


def test_a_page_of_50_costs_one_batched_call_per_channel(graph: Graph, sandbox: SandboxServer,
                                                         synced_redis_url: str) -> None:
    _flush_source_cache(synced_redis_url)
    graph.data("{ me { username } }")
    before = _record_calls(sandbox)
    data = graph.data(PAGE, {"first": 50})
    calls = _record_calls(sandbox) - before
    per_channel = Counter(case["channel"]["key"] for case in data["cases"]["nodes"])
    assert len(per_channel) > 1
    for channel in CHANNELS:
        allowed = math.ceil(per_channel[channel] / _batch_limit(channel))
        assert calls[channel] <= allowed, (channel, calls[channel], per_channel[channel])
    assert all(case["source"] is not None for case in data["cases"]["nodes"])

    before = _record_calls(sandbox)
    graph.data(PAGE, {"first": 50})
    again = _record_calls(sandbox) - before
    assert sum(again.values()) == 0, "the second view of the page is served from the cache"


def _errors_by_channel(body: dict[str, Any]) -> dict[str, set[str]]:
    nodes = body["data"]["cases"]["nodes"]
    found: dict[str, set[str]] = {}
    for error in body.get("errors") or []:
        path = error["path"]
        assert path[:2] == ["cases", "nodes"], path
        assert path[3] == "source", path
        found.setdefault(nodes[path[2]]["channel"]["key"], set()).add(error["extensions"]["code"])
    return found


def test_one_channel_down_answers_partially(sandbox: SandboxServer, redis_url: str, e2e_dir: Path) -> None:
    url = redis_db_url(redis_url, SCRATCH_DBS[0])
    directory = e2e_dir / "down"
    directory.mkdir(exist_ok=True)
    channels_file = write_channels_file(directory, sandbox.url, poll_interval=0.5)
    settings = gateway_settings(url, channels_file, sandbox.url)
    with start_gateway(settings) as graph:
        sandbox.faults("mayor", down=True)
        try:
            body = graph.query(PAGE, {"first": 60, "filter": {"channels": ["mayor", "hotline12345"]}})
            nodes = body["data"]["cases"]["nodes"]
            assert {n["channel"]["key"] for n in nodes} == {"mayor", "hotline12345"}
            assert _errors_by_channel(body) == {"mayor": {"UPSTREAM_UNAVAILABLE"}}
            assert all(n["source"] is None for n in nodes if n["channel"]["key"] == "mayor")
            assert all(n["source"] is not None for n in nodes if n["channel"]["key"] == "hotline12345")
            assert "Traceback" not in str(body)
            health = _wait_for_health(graph, "mayor", {"DOWN", "DEGRADED"})
            assert health["lastError"]
            assert _wait_for_health(graph, "hotline12345", {"UP"})
        finally:
            sandbox.faults("mayor", reset=True)
        _wait_for_health(graph, "mayor", {"UP"})


def _wait_for_health(graph: Graph, channel: str, statuses: set[str], patience: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + patience
    while True:
        channels = graph.data("{ channels { key health { status lastSyncAt lagSeconds lastError } } }")
        health: dict[str, Any] = next(c["health"] for c in channels["channels"] if c["key"] == channel)
        if health["status"] in statuses or time.monotonic() > deadline:
            assert health["status"] in statuses, health
            return health
        time.sleep(0.2)

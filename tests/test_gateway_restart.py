"""A gateway restarted on the same Redis resumes: no case lost, none duplicated, cursors kept."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

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

IDS = """query($after: String) { cases(first: 100, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } nodes { id receivedAt } } }"""


def _all_cases(graph: Graph) -> tuple[int, dict[str, datetime]]:
    """totalCount, and every case id with its received time (failing on a duplicate)."""
    cases: dict[str, datetime] = {}
    after = None
    while True:
        page = graph.data(IDS, {"after": after})["cases"]
        for node in page["nodes"]:
            assert node["id"] not in cases, f"duplicate {node['id']}"
            cases[node["id"]] = datetime.fromisoformat(node["receivedAt"])
        if not page["pageInfo"]["hasNextPage"]:
            return page["totalCount"], cases
        after = page["pageInfo"]["endCursor"]


def test_restart_resumes_from_the_cursors(sandbox: SandboxServer, redis_url: str, e2e_dir: Path) -> None:
    url = redis_db_url(redis_url, SCRATCH_DBS[1])
    directory = e2e_dir / "restart"
    directory.mkdir(exist_ok=True)
    channels_file = write_channels_file(directory, sandbox.url, poll_interval=60)
    settings = gateway_settings(url, channels_file, sandbox.url)

    # whole seconds: Open311 stamps a request that arrives while we run with the second it was first seen
    started = datetime.now(UTC).replace(microsecond=0)
    before = sandbox.stats()
    with start_gateway(settings) as graph:
        # which channels had synced when /readyz said ready (a channel that is down also counts as
        # settled): printed if the assertion below fails, to tell an incomplete first sync apart
        first_ready = httpx.get(f"{graph.base_url}/readyz").json()["channels"]
        total, cases = _all_cases(graph)
    first_sync = {key: n - before[key] for key, n in sandbox.stats().items()}
    assert total == len(cases) > 0

    before = sandbox.stats()
    with start_gateway(settings) as graph:
        total_again, cases_again = _all_cases(graph)
    resumed = {key: n - before[key] for key, n in sandbox.stats().items()}

    assert total_again == len(cases_again)
    assert set(cases) <= set(cases_again), "no case lost"
    # Only tickets received since (the sandbox keeps receiving: Open311 windows end at "now") are new.
    fresh = {new: cases_again[new] for new in set(cases_again) - set(cases)}
    assert all(at >= started for at in fresh.values()), (started, fresh, first_ready)
    # Resuming from the saved cursors asks only for what changed since: never more than the first full
    # sync did, and less over all channels (those whose history spans several pages ask for one).
    assert all(resumed[key] <= first_sync[key] for key in CHANNELS), (resumed, first_sync)
    assert sum(resumed.values()) < sum(first_sync.values())


def test_two_replicas_split_the_channels_and_agree_on_readiness(sandbox: SandboxServer, redis_url: str,
                                                                 e2e_dir: Path) -> None:
    url = redis_db_url(redis_url, SCRATCH_DBS[1])
    directory = e2e_dir / "replicas"
    directory.mkdir(exist_ok=True)
    channels_file = write_channels_file(directory, sandbox.url, poll_interval=0.5)
    # two replicas in one test process: named, as two processes would be by host and pid
    first_settings = gateway_settings(url, channels_file, sandbox.url, replica="网关甲")
    second_settings = gateway_settings(url, channels_file, sandbox.url, replica="网关乙")
    with start_gateway(first_settings) as first, start_gateway(second_settings) as second:
        # the first replica took every channel before the second came; it hands about half over
        reports = _until_split(first, second)
        by_channel = [{c["key"]: c for c in report["channels"]} for report in reports]
        for key in CHANNELS:
            mine, theirs = by_channel[0][key], by_channel[1][key]
            assert mine["syncedBy"] == theirs["syncedBy"], (mine, theirs)
            assert mine["sync"] == theirs["sync"] == "synced"
            assert None not in (mine["lastSyncAt"], theirs["lastSyncAt"])
        total, cases = _all_cases(first)
        total_there, cases_there = _all_cases(second)
    assert total == total_there == len(cases) > 0
    assert set(cases) == set(cases_there)


def _until_split(*graphs: Graph, seconds: float = 60.0) -> list[dict[str, Any]]:
    """Both replicas' /readyz once they agree on who syncs what and each syncs a fair part of the
    channels (four and four while every channel weighs the same; a channel that brought far more
    cases than the others weighs more, see casework.synclease.plan)."""
    deadline = time.monotonic() + seconds
    while True:
        reports = [httpx.get(f"{graph.base_url}/readyz").json() for graph in graphs]
        assert [report["replica"] for report in reports] == ["网关甲", "网关乙"]
        split = [Counter(c["syncedBy"] for c in report["channels"]) for report in reports]
        if split[0] == split[1] and set(split[0]) == {"网关甲", "网关乙"} and min(split[0].values()) >= 3:
            return reports
        assert time.monotonic() < deadline, split
        time.sleep(0.2)

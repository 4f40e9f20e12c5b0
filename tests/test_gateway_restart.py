"""A gateway restarted on the same Redis resumes: no case lost, none duplicated, cursors kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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

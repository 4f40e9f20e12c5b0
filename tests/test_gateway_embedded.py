"""``make up`` in miniature: no REDIS_URL (embedded store), the sandbox mounted in-process."""

from __future__ import annotations

import httpx

from gateway.settings import Settings
from tests.e2e import CHANNELS, start_gateway
from tests.servers import free_port


def test_embedded_store_with_mounted_sandbox_serves_cases() -> None:
    settings = Settings(redis_url=None, port=free_port())
    assert settings.sandbox
    assert settings.uses_default_channels
    with start_gateway(settings) as graph:
        data = graph.data("""{ channels { key caseCount health { status } }
            cases(first: 5) { totalCount nodes { title channel { key } source { __typename } } } }""")
        assert {c["key"] for c in data["channels"]} == set(CHANNELS)
        assert data["cases"]["totalCount"] > 0
        assert all(case["source"] is not None for case in data["cases"]["nodes"])
        stats = httpx.get(f"{graph.base_url}/sandbox/mayor/__sandbox/stats")
        assert stats.status_code == 200
        assert stats.json()["total"] > 0, "the connectors reach the sandbox over HTTP"

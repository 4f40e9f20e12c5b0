"""Helpers the channel protocol tests (tests/test_channel_*.py) share: draining a connector, and
talking to a sandbox channel's own endpoints and knobs with a client of the test's own."""

from __future__ import annotations

from typing import Any

import httpx

from connectors import ChangePage, Connector

__all__ = ["call", "drain", "ids", "knob", "stats"]


async def drain(connector: Connector, cursor: str | None = None) -> list[ChangePage]:
    """Every page of one ``changes`` pass from ``cursor``."""
    return [page async for page in connector.changes(cursor)]


def ids(pages: list[ChangePage]) -> list[str]:
    """The source ids of the pages' records, in order."""
    return [record.source_id for page in pages for record in page.records]


async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request of the test's own (not the connector's)."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, **kwargs)


async def knob(url: str, path: str, **payload: Any) -> None:
    """Turn one of the sandbox's knobs (``faults``, ``arrive``, ``revoke-tokens`` …)."""
    (await call("POST", f"{url}/__sandbox/{path}", json=payload)).raise_for_status()


async def stats(url: str) -> dict[str, int]:
    """The sandbox channel's request counts per endpoint."""
    return dict((await call("GET", f"{url}/__sandbox/stats")).json()["requests"])

"""A 50-case query with live source detail.

Figures: throughput, latency percentiles, upstream calls and CPU per request.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import httpx
import redis

from bench.harness import Stack
from casework import keys

PAGE_QUERY = """
query Page($first: Int!, $after: String) {
  cases(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id sourceId title status sourceStatus receivedAt
      channel { key }
      region { name level }
      category { name }
      citizen { name phone }
      source { __typename ... on SourceRecord { sourceId fetchedAt stale } }
    } }
  }
}
"""

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _upstream_total(client: httpx.Client, sandbox_url: str) -> int:
    stats = client.get(f"{sandbox_url}/__sandbox/stats").json()
    return int(stats.get("total", 0))


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return round(ordered[index] * 1000, 2)


def _flush_source_cache(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    batch = [key for key in client.scan_iter(match=keys.SOURCE_CACHE_SCAN_PATTERN, count=1000)]
    if batch:
        client.delete(*batch)


async def _one(client: httpx.AsyncClient, url: str, after: str | None = None) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = await client.post(url, json={"query": PAGE_QUERY, "variables": {"first": 50, "after": after}})
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed, answer.json()


async def _cold_pages(stack: Stack, pages: int) -> dict[str, Any]:
    """Distinct pages straight after a source-cache flush: every source is a pass-through."""
    _flush_source_cache(stack.redis_url)
    url = f"{stack.gateway_url}/graphql"
    with httpx.Client() as sync_client:
        before = _upstream_total(sync_client, stack.sandbox_url)
        latencies: list[float] = []
        errors = 0
        after = None
        async with httpx.AsyncClient(timeout=30, headers=stack.headers) as client:
            for _ in range(pages):
                elapsed, body = await _one(client, url, after)
                latencies.append(elapsed)
                errors += len(body.get("errors") or [])
                info = body["data"]["cases"]["pageInfo"]
                if not info["hasNextPage"]:
                    break
                after = info["endCursor"]
        calls = _upstream_total(sync_client, stack.sandbox_url) - before
    return {"queries": len(latencies), "upstream_calls_per_query": round(calls / len(latencies), 2),
            "p50_ms": _percentile(latencies, 0.5), "p99_ms": _percentile(latencies, 0.99), "errors": errors}


async def _steady(stack: Stack, requests: int, concurrency: int) -> dict[str, Any]:
    """The same first page again and again (a dashboard refreshing): sources come from the Redis cache."""
    url = f"{stack.gateway_url}/graphql"
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            queue.get_nowait()
            elapsed, _ = await _one(client, url)
            latencies.append(elapsed)

    with httpx.Client() as sync_client:
        before_calls = _upstream_total(sync_client, stack.sandbox_url)
        cpu_before = _cpu_seconds(stack.gateway_pid)
        started = time.perf_counter()
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits, headers=stack.headers) as client:
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = _cpu_seconds(stack.gateway_pid) - cpu_before
        calls = _upstream_total(sync_client, stack.sandbox_url) - before_calls
    return {"requests": requests, "concurrency": concurrency, "requests_per_s": round(requests / wall, 1),
            "p50_ms": _percentile(latencies, 0.5), "p99_ms": _percentile(latencies, 0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
            "gateway_cpu_ms_per_request": round(cpu * 1000 / requests, 2),
            "upstream_calls_per_query": round(calls / requests, 3)}


def run(stack: Stack, *, requests: int = 400, concurrency: int = 8) -> dict[str, Any]:
    async def both() -> dict[str, Any]:
        cold = await _cold_pages(stack, pages=8)
        await _steady(stack, requests=20, concurrency=2)  # warm-up: caches, connection pools
        steady = await _steady(stack, requests=requests, concurrency=concurrency)
        return {"cold_pages": cold, "steady_same_page": steady}

    return asyncio.run(both())

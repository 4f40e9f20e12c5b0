"""Background loops stop when cancelled, even when Python 3.11 loses the cancellation in redis-py.

redis-py sends every command under :func:`asyncio.wait_for`, which on 3.11 returns normally when the
cancellation arrives as the write completes. The gateway's client writes under :func:`asyncio.timeout`
instead, and a loop that checks :func:`raise_if_cancelled` once a round stops whatever client it
uses. The trials cancel a writing loop at random moments on a real Redis.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from casework.cancellation import raise_if_cancelled

TRIALS = 60


async def _stops_when_cancelled(loop: asyncio.Task[None], rng: random.Random) -> bool:
    """Cancel the loop at a random moment: did that stop it? (Then make sure it is stopped.)"""
    await asyncio.sleep(rng.random() * 0.005)
    loop.cancel()
    done, _ = await asyncio.wait([loop], timeout=2)
    while not loop.done():  # a loop that lost its cancellation: cancel until one lands elsewhere
        loop.cancel()
        await asyncio.wait([loop], timeout=0.05)
    return bool(done) and loop.cancelled()


@pytest.fixture
async def plain_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """redis-py's own client, as a library or tool would build it (not the gateway's)."""
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def _cancellations_landed(client: aioredis.Redis, *, check: bool) -> list[bool]:
    """A loop writing to Redis (checking :func:`raise_if_cancelled` each round, or not), cancelled at
    up to ``TRIALS`` random moments: whether each cancellation stopped it, up to the first that did
    not (each of those costs seconds)."""
    async def writes() -> None:
        while True:
            await client.set("ms:test:beat", "1")
            if check:
                raise_if_cancelled()

    rng = random.Random(7)
    landed: list[bool] = []
    while len(landed) < TRIALS and all(landed):
        landed.append(await _stops_when_cancelled(asyncio.create_task(writes()), rng))
    return landed


async def test_a_writing_loop_that_checks_stops_every_time(plain_client: aioredis.Redis) -> None:
    assert all(await _cancellations_landed(plain_client, check=True))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12's wait_for keeps the cancellation")
async def test_without_the_check_a_cancellation_can_be_lost(plain_client: aioredis.Redis) -> None:
    """Why the check exists: the same loop without it does not always stop."""
    assert not all(await _cancellations_landed(plain_client, check=False)), (
        f"all {TRIALS} cancellations landed: is redis-py no longer writing under wait_for?")


async def test_the_gateway_client_loses_no_cancellation(redis_client: aioredis.Redis) -> None:
    assert all(await _cancellations_landed(redis_client, check=False))


def test_outside_a_task_there_is_nothing_to_check() -> None:
    raise_if_cancelled()

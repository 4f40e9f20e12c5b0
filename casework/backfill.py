"""Backfill: take a channel's history in (from a date), cluster it, and be able to stop and resume.

The connector contract has no generic "since" (each channel pages its own way), so a backfill reads
the channel's change feed from its *own* cursor — kept in ``ms:backfill``, apart from the sync loop's,
so the two never disturb each other — and takes in the records received on or after ``since``. The
cursor is saved once a batch of pages is stored and clustered (:data:`BATCH_RECORDS`): an interrupted
backfill resumes after the last finished batch, and idempotent ingest makes a re-read page harmless.

The next page is fetched while the current one is taken in, so a channel's answer time overlaps the
gateway's own work instead of adding to it. A channel that stops answering for a while (a timeout, a
5xx, throttling) is asked again from the last saved cursor, after a pause that doubles each time
(:data:`RETRIES` times, and never before the channel's circuit breaker lets a call through); past that,
or on a refusal that will not cure itself (credentials, a 4xx), the backfill stops with
:class:`BackfillInterrupted`, its cursor saved for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from casework import keys
from casework.channels import ChannelRuntime
from casework.clusters import ClusterStore
from casework.model import IngestOutcome, case_key
from casework.store import CaseStore
from connectors import BadRecord, ChangePage, ConnectorError, RateLimited, UpstreamUnavailable

__all__ = ["RETRIES", "BackfillInterrupted", "BackfillProgress", "backfill"]

log = logging.getLogger(__name__)

RETRIES = 5
"""How often in a row a channel that does not answer is asked again before the backfill stops."""
BATCH_RECORDS = 200
"""Records taken in together at least: a channel's pages (often 50 records) are gathered until they
hold this many, since storing and clustering a batch costs round trips and a transaction whatever its
size. 20,000 of the bench's records as one channel's pages of 50, five runs alternating: 962 cases/s
on average (Python 0.80 ms a case, redis-server 0.27) against 876 (0.86, 0.31) a page at a time. The
cursor is saved once a batch: an interrupted backfill reads at most a batch again."""
FIRST_PAUSE = 2.0
"""Seconds before the first such retry; each further one waits twice as long (2 + 4 + 8 + 16 + 32 s)."""


@dataclass(slots=True)
class BackfillProgress:
    """Where a backfill stands; handed to the progress callback after every page."""

    channel: str
    pages: int = 0
    read: int = 0
    taken: int = 0          # received on or after ``since`` and new to the store
    skipped: int = 0        # older than ``since``, or already stored
    quarantined: int = 0
    cursor: str | None = None
    resumed: bool = False
    retries: int = 0        # times the channel was asked again after it did not answer


class BackfillInterrupted(Exception):
    """The channel could not be read to its end; ``progress`` tells how far the backfill got (its cursor
    is saved: running it again resumes there). The channel's error is the ``__cause__``."""

    def __init__(self, progress: BackfillProgress, reason: str) -> None:
        super().__init__(reason)
        self.progress = progress


async def backfill(runtime: ChannelRuntime, store: CaseStore, clusters: ClusterStore, since: datetime, *,
                   restart: bool = False, progress: Callable[[BackfillProgress], None] | None = None,
                   retries: int | None = None, first_pause: float | None = None,
                   batch_records: int | None = None) -> BackfillProgress:
    """Read ``runtime``'s channel from the saved backfill cursor to its end (see the module docstring).

    ``retries``, ``first_pause`` and ``batch_records`` default to :data:`RETRIES`, :data:`FIRST_PAUSE`
    and :data:`BATCH_RECORDS` (1: a page at a time). ``progress`` is called after each batch.

    Raises:
        BackfillInterrupted: the channel refused, or did not answer ``retries`` + 1 times in a row.
    """
    retries = RETRIES if retries is None else retries
    first_pause = FIRST_PAUSE if first_pause is None else first_pause
    batch_records = BATCH_RECORDS if batch_records is None else batch_records
    redis = store.redis
    if restart:
        await redis.hdel(keys.BACKFILL_CURSORS, runtime.key)
    saved = await redis.hget(keys.BACKFILL_CURSORS, runtime.key)
    state = BackfillProgress(runtime.key, cursor=None if saved is None else _text(saved),
                             resumed=saved is not None)
    failures = 0
    while True:
        taken = state.pages
        try:
            await _read(runtime, store, clusters, since, state, progress, batch_records)
            return state
        except UpstreamUnavailable as exc:
            failures = 1 if state.pages > taken else failures + 1  # in a row: a page taken in resets it
            if failures > retries:
                raise BackfillInterrupted(state, f"{exc} ({failures} times in a row)") from exc
            pause = exc.retry_after if isinstance(exc, RateLimited) else first_pause * 2 ** (failures - 1)
            pause = max(pause, runtime.breaker.retry_in())  # an open circuit would refuse it unasked
            log.warning("%s: %s; asking again after the last finished batch in %.0f s", runtime.key, exc,
                        pause)
            state.retries += 1
            await asyncio.sleep(pause)
        except ConnectorError as exc:
            raise BackfillInterrupted(state, str(exc) or type(exc).__name__) from exc


async def _read(runtime: ChannelRuntime, store: CaseStore, clusters: ClusterStore, since: datetime,
                state: BackfillProgress, progress: Callable[[BackfillProgress], None] | None,
                batch_records: int) -> None:
    """Take the channel's pages in from ``state.cursor`` to the end of its feed, in batches of at least
    ``batch_records`` records, saving the cursor after each."""
    pages = runtime.connector.changes(state.cursor)
    ahead = _prefetched(runtime, pages)
    batch: list[ChangePage] = []
    held = 0  # records in ``batch``
    try:
        async for page in ahead:
            batch.append(page)
            held += len(page.records)
            if held < batch_records:
                continue
            await _take_batch(batch, runtime, store, clusters, since, state, progress)
            batch, held = [], 0
        if batch:
            await _take_batch(batch, runtime, store, clusters, since, state, progress)
    finally:
        await ahead.aclose()  # first: it may be fetching from ``pages``
        await _close(pages)


async def _prefetched(runtime: ChannelRuntime,
                      pages: AsyncIterator[ChangePage]) -> AsyncGenerator[ChangePage, None]:
    """The pages through the channel's breaker (the end of the feed is not a failure), each next one
    already asked for while the caller takes the last one in."""
    async def following() -> ChangePage | None:
        try:
            return await anext(pages)
        except StopAsyncIteration:
            return None

    fetch: asyncio.Future[ChangePage | None] = asyncio.ensure_future(runtime.call(following))
    try:
        while (page := await fetch) is not None:
            fetch = asyncio.ensure_future(runtime.call(following))
            yield page
    finally:
        if not fetch.done():
            fetch.cancel()
        # retrieved, so that a page that failed while the caller failed too is not reported as unheard
        await asyncio.gather(fetch, return_exceptions=True)


async def _close(pages: Any) -> None:
    aclose = getattr(pages, "aclose", None)
    if aclose is not None:
        await aclose()


async def _take_batch(batch: list[ChangePage], runtime: ChannelRuntime, store: CaseStore,
                      clusters: ClusterStore, since: datetime, state: BackfillProgress,
                      progress: Callable[[BackfillProgress], None] | None) -> None:
    """Take the pages in together, then save the last cursor among them."""
    await _take(batch, store, clusters, since, state)
    cursor = next((page.cursor for page in reversed(batch) if page.cursor is not None), None)
    if cursor is not None:
        state.cursor = cursor
        await store.redis.hset(keys.BACKFILL_CURSORS, runtime.key, cursor)
    state.pages += len(batch)
    if progress is not None:
        progress(state)


async def _take(batch: list[ChangePage], store: CaseStore, clusters: ClusterStore, since: datetime,
                state: BackfillProgress) -> None:
    records = [record for page in batch for record in page.records]
    for bad in (bad for page in batch for bad in page.rejected):
        if isinstance(bad, BadRecord):
            await store.quarantine(state.channel, bad)
        state.quarantined += 1
    state.read += len(records)
    wanted = [r for r in records if r.received_at >= since and r.channel == state.channel]
    state.skipped += len(records) - len(wanted)
    ingested = await store.ingest_cases(wanted)
    created = [(case_key(record.channel, record.source_id), case)
               for record, (outcome, case) in zip(wanted, ingested, strict=True)
               if outcome is IngestOutcome.CREATED]
    await clusters.assign_many(created)  # in order: one may join the cluster an earlier one started
    state.taken += len(created)
    state.skipped += len(ingested) - len(created)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Backfill: take a channel's history in (from a date), cluster it, and be able to stop and resume.

The connector contract has no generic "since" (each channel pages its own way), so a backfill reads
the channel's change feed from its *own* cursor — kept in ``ms:backfill``, apart from the sync loop's,
so the two never disturb each other — and takes in the records received on or after ``since``. The
cursor is saved after each page, once its records are stored and clustered: an interrupted backfill
resumes after the last finished page, and idempotent ingest makes a re-read page harmless.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from casework import keys
from casework.channels import ChannelRuntime
from casework.clusters import ClusterStore
from casework.model import IngestOutcome, case_key
from casework.store import CaseStore
from connectors import BadRecord, ChangePage

__all__ = ["BackfillProgress", "backfill"]


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


async def backfill(runtime: ChannelRuntime, store: CaseStore, clusters: ClusterStore, since: datetime, *,
                   restart: bool = False,
                   progress: Callable[[BackfillProgress], None] | None = None) -> BackfillProgress:
    """Read ``runtime``'s channel from the saved backfill cursor to its end (see the module docstring)."""
    redis = store.redis
    if restart:
        await redis.hdel(keys.BACKFILL_CURSORS, runtime.key)
    saved = await redis.hget(keys.BACKFILL_CURSORS, runtime.key)
    state = BackfillProgress(runtime.key, cursor=None if saved is None else _text(saved),
                             resumed=saved is not None)
    pages = runtime.connector.changes(state.cursor)
    try:
        async for page in _pages(runtime, pages):
            await _take(page, store, clusters, since, state)
            if page.cursor is not None:
                state.cursor = page.cursor
                await redis.hset(keys.BACKFILL_CURSORS, runtime.key, page.cursor)
            state.pages += 1
            if progress is not None:
                progress(state)
    finally:
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()
    return state


async def _pages(runtime: ChannelRuntime, pages: AsyncIterator[ChangePage]) -> AsyncIterator[ChangePage]:
    """The pages through the channel's breaker (the end of the feed is not a failure)."""
    async def following() -> ChangePage | None:
        try:
            return await anext(pages)
        except StopAsyncIteration:
            return None

    while (page := await runtime.call(following)) is not None:
        yield page


async def _take(page: ChangePage, store: CaseStore, clusters: ClusterStore, since: datetime,
                state: BackfillProgress) -> None:
    for bad in page.rejected:
        if isinstance(bad, BadRecord):
            await store.quarantine(state.channel, bad)
        state.quarantined += 1
    state.read += len(page.records)
    wanted = [r for r in page.records if r.received_at >= since and r.channel == state.channel]
    state.skipped += len(page.records) - len(wanted)
    ingested = await store.ingest_cases(wanted)
    created = [(case_key(record.channel, record.source_id), case)
               for record, (outcome, case) in zip(wanted, ingested, strict=True)
               if outcome is IngestOutcome.CREATED]
    await clusters.assign_many(created)  # in order: one may join the cluster an earlier one started
    state.taken += len(created)
    state.skipped += len(ingested) - len(created)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

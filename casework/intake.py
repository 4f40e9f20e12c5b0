"""Intake: bringing every channel's tickets into the store, by polling and by webhooks.

One sync loop per channel (:meth:`Intake.run`) calls :meth:`Intake.sync_once` every
``poll_interval`` seconds. A pass reads the channel's changes from the saved cursor to the end,
page by page: the page's records are ingested, its rejects quarantined, and only then its cursor
saved — so a crash between the two re-reads that page, and idempotent ingest makes the re-read
harmless. One bad record never fails a pass; one channel's failure never stops another's loop.

Failures back off per channel: exponentially with jitter on :class:`UpstreamUnavailable`, after
``Retry-After`` on :class:`RateLimited`, until the breaker's half-open time while the circuit is
open, and slowly on refusals (credentials, 4xx) that will not cure themselves.

Readiness (:meth:`Intake.ready`, behind ``/readyz``): every channel is *settled* — it completed one
full pass, or it has been tried and is known to be down (its circuit opened) or refusing us
(credentials, 4xx). Settled stays settled (a half-open trial does not flip readiness back), so one
dead channel does not keep the gateway unready for ever; :meth:`Intake.readiness` tells which
channel is which, and each channel's health shows DOWN until it syncs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from casework.channels import ChannelRuntime, ChannelSet
from casework.clusters import ClusterStore
from casework.model import IngestOutcome, case_key
from casework.store import CaseStore
from connectors import (
    BadRecord,
    CaseRecord,
    ChangePage,
    ConnectorError,
    RateLimited,
    UpstreamUnavailable,
    WebhookRejected,
    utc_now,
)

__all__ = ["Intake", "SyncReport"]

log = logging.getLogger(__name__)

REFUSAL_BACKOFF = 5.0
"""Seconds before retrying a channel that refused us (doubling up to the cap): fixing credentials or a
URL takes a human, but a system that answered 404 while starting up should not wait long."""


@dataclass(slots=True)
class SyncReport:
    """What one sync pass (or one webhook) took in."""

    channel: str
    pages: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    cursor: str | None = None
    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime | None = None

    def count(self, outcome: IngestOutcome) -> None:
        if outcome is IngestOutcome.CREATED:
            self.created += 1
        elif outcome is IngestOutcome.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1


class Intake:
    """The sync loops and the webhook receiver of every configured channel.

    Args:
        store: where records go.
        channels: the entered channels.
        backoff_base: seconds of the first retry delay after a failure (doubled per failure).
        backoff_cap: the longest retry delay.
        rng: jitter source (seed it in tests).
        clusters: when given, every new case is clustered (民声云) right after it is stored.
    """

    def __init__(self, store: CaseStore, channels: ChannelSet, *, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, rng: random.Random | None = None,
                 clusters: ClusterStore | None = None) -> None:
        self.store = store
        self.clusters = clusters
        self.channels = channels
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        self._locks = {key: asyncio.Lock() for key in channels}

    # -- one pass ------------------------------------------------------------------------------

    async def sync_once(self, channel: str) -> SyncReport:
        """Read the channel's changes from its saved cursor to the end.

        Raises:
            UpstreamError: the channel failed mid-pass (pages before the failure are kept).
            KeyError: no such channel.
        """
        runtime = self.channels[channel]
        async with self._locks[channel]:
            runtime.sync_attempts += 1
            report = SyncReport(channel, cursor=await self.store.load_cursor(channel))
            if self.clusters is not None:  # cases a crash left unclustered
                await self.clusters.assign_pending()
            pages = runtime.connector.changes(report.cursor)
            try:
                while (page := await runtime.call(lambda: _next_page(pages))) is not None:
                    await self._take(runtime, page, report)
                    if page.cursor is not None and page.cursor != report.cursor:
                        await self.store.save_cursor(channel, page.cursor)
                        report.cursor = page.cursor
                    report.pages += 1
            finally:
                await _close(pages)
            report.finished_at = utc_now()
            runtime.note_synced()
            return report

    async def receive_webhook(self, channel: str, headers: Mapping[str, str], body: bytes, *,
                              accept: Callable[[], Awaitable[None]] | None = None) -> SyncReport:
        """Verify a pushed request through the channel's connector and take its records in.

        ``accept`` runs once the connector verified the request and before anything is taken in
        (the gateway's cross-replica replay check); whatever it raises stops the request.

        Raises:
            WebhookRejected: unknown channel, or the connector refused the request.
        """
        runtime = self.channels.get(channel)
        if runtime is None:
            raise WebhookRejected(f"no channel {channel!r}")
        page = await runtime.connector.parse_webhook(headers, body)
        if accept is not None:
            await accept()
        report = SyncReport(channel)
        await self._take(runtime, page, report)
        report.pages, report.finished_at = 1, utc_now()
        return report

    async def _take(self, runtime: ChannelRuntime, page: ChangePage, report: SyncReport) -> None:
        for bad in page.rejected:
            await self.store.quarantine(runtime.key, _as_bad_record(bad))
            report.quarantined += 1
        records = []
        for record in page.records:
            problem = _misfiled(record, runtime.key)
            if problem is not None:
                await self.store.quarantine(runtime.key, BadRecord(record.source_id, problem,
                                                                   record.model_dump(mode="json")))
                report.quarantined += 1
            else:
                records.append(record)
        # the page in one write; then its new cases clustered one by one, in order, since one may join
        # the cluster an earlier one of the same page started
        for record, (outcome, case) in zip(records, await self.store.ingest_cases(records), strict=True):
            if outcome is IngestOutcome.CREATED and self.clusters is not None:
                await self.clusters.assign(case_key(record.channel, record.source_id), case)
            report.count(outcome)

    # -- the loops -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync every channel until cancelled, each in its own loop."""
        if not self.channels:
            await asyncio.Event().wait()  # nothing to sync, but "until cancelled" all the same
        await asyncio.gather(*(self._loop(runtime) for runtime in self.channels.values()))

    async def _loop(self, runtime: ChannelRuntime) -> None:
        failures = 0
        while True:
            try:
                report = await self.sync_once(runtime.key)
                failures, delay = 0, runtime.config.poll_interval
                if report.created or report.updated or report.quarantined:
                    log.info("%s: %d new, %d changed, %d quarantined", runtime.key, report.created,
                             report.updated, report.quarantined)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a loop must outlive anything one pass throws
                failures += 1
                delay = self._after_failure(runtime, exc, failures)
            await asyncio.sleep(delay)

    def _after_failure(self, runtime: ChannelRuntime, exc: Exception, failures: int) -> float:
        """Note the failure on the runtime and choose the delay before the next pass."""
        runtime.note_error(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, RateLimited):
            log.info("%s: throttled, retrying in %.1fs", runtime.key, exc.retry_after)
            return max(exc.retry_after, 0.1)
        if isinstance(exc, UpstreamUnavailable):
            runtime.note_failed_pass()
            log.warning("%s: unavailable (%s), attempt %d", runtime.key, exc, failures)
            return max(self._backoff(failures), runtime.breaker.retry_in())
        if isinstance(exc, ConnectorError):
            runtime.note_failed_pass(refused=str(exc) or type(exc).__name__)
            log.error("%s: refused (%s); retrying slowly", runtime.key, exc)
            return min(self.backoff_cap, REFUSAL_BACKOFF * 2.0 ** min(failures - 1, 30))
        log.error("%s: sync pass failed", runtime.key, exc_info=exc)
        return self._backoff(failures)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** min(failures - 1, 30))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    # -- readiness -----------------------------------------------------------------------------

    def ready(self) -> bool:
        """Every channel has settled: synced once, or tried and known down or refusing (see module doc)."""
        return all(runtime.settled for runtime in self.channels.values())

    def readiness(self) -> dict[str, str]:
        """Per channel: ``synced``, ``refused`` (credentials, 4xx), ``down`` (circuit open), ``starting``."""
        states: dict[str, str] = {}
        for key, runtime in self.channels.items():
            if runtime.first_sync_done.is_set():
                states[key] = "synced"
            elif runtime.settled_failure is not None:
                states[key] = "refused"
            elif runtime.given_up_at_start:
                states[key] = "down"
            else:
                states[key] = "starting"
        return states


async def _next_page(pages: AsyncIterator[ChangePage]) -> ChangePage | None:
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None


async def _close(pages: AsyncIterator[ChangePage]) -> None:
    aclose = getattr(pages, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # closing a broken generator must not hide why the pass ended
            log.debug("closing a change iterator failed: %s", exc)


def _as_bad_record(bad: object) -> BadRecord:
    if isinstance(bad, BadRecord):
        return bad
    if isinstance(bad, ValidationError):
        first = bad.errors()[0]["msg"] if bad.error_count() else "invalid"
        return BadRecord(None, f"invalid record: {bad.error_count()} problem(s), first: {first}", None)
    return BadRecord(None, f"unreadable reject ({type(bad).__name__})", repr(bad)[:4096])


def _misfiled(record: CaseRecord, channel: str) -> str | None:
    if record.channel != channel:
        return f"record claims channel {record.channel!r} but came from {channel!r}"
    return None

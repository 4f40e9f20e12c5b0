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

With several gateway replicas on one Redis, give the intake :class:`~casework.synclease.SyncLeases`:
a channel is then synced by the one replica holding its lease, and the others follow the state it
publishes (readiness and health included) and take the channel over when the holder goes away.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from casework.cancellation import raise_if_cancelled
from casework.channels import ChannelRuntime, ChannelSet
from casework.clusters import ClusterStore
from casework.model import IngestOutcome, case_key
from casework.store import CaseStore
from casework.synclease import SyncLeases, channel_weight, plan
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

__all__ = ["Intake", "SyncReport", "SyncedElsewhere"]

log = logging.getLogger(__name__)

REFUSAL_BACKOFF = 5.0
"""Seconds before retrying a channel that refused us (doubling up to the cap): fixing credentials or a
URL takes a human, but a system that answered 404 while starting up should not wait long."""


class SyncedElsewhere(Exception):
    """Another replica holds the channel's sync lease (or took it over in the middle of this pass)."""


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
        leases: when given, a channel is synced only while this replica holds its lease; without,
            this intake syncs every channel (one replica).
    """

    def __init__(self, store: CaseStore, channels: ChannelSet, *, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, rng: random.Random | None = None,
                 clusters: ClusterStore | None = None, leases: SyncLeases | None = None) -> None:
        self.store = store
        self.clusters = clusters
        self.leases = leases
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
            SyncedElsewhere: another replica holds the channel's lease, or took it over mid-pass
                (the pages saved before are kept; the page that was being read is read again there).
            KeyError: no such channel.
        """
        runtime = self.channels[channel]
        async with self._locks[channel]:
            if self.leases is not None:
                planned = await self._planned_holder(self.leases, channel)
                await self._keep_lease(runtime, take=planned == self.leases.holder)
            runtime.lead()
            runtime.sync_attempts += 1
            report = SyncReport(channel, cursor=await self.store.load_cursor(channel))
            if self.clusters is not None:  # cases a crash left unclustered
                await self.clusters.assign_pending()
            pages = runtime.connector.changes(report.cursor)
            try:
                while (page := await runtime.call(lambda: _next_page(pages))) is not None:
                    await self._take(runtime, page, report)
                    await self._keep_lease(runtime)  # before the cursor: a new holder's must not go back
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
        # the page in one write; then its new cases clustered together, in order, since one may join
        # the cluster an earlier one of the same page started
        ingested = await self.store.ingest_cases(records)
        created = [(case_key(record.channel, record.source_id), case)
                   for record, (outcome, case) in zip(records, ingested, strict=True)
                   if outcome is IngestOutcome.CREATED]
        if created and self.clusters is not None:
            await self.clusters.assign_many(created)
        for outcome, _ in ingested:
            report.count(outcome)

    # -- the loops -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync every channel until cancelled, each in its own loop; then give up the leases held."""
        if not self.channels:
            await asyncio.Event().wait()  # nothing to sync, but "until cancelled" all the same
        heartbeat = None
        if self.leases is not None:
            await self._beat_once(self.leases)  # before the first passes: the plan counts this replica
            heartbeat = asyncio.create_task(self._beat(self.leases), name="minsheng-sync-heartbeat")
        try:
            await asyncio.gather(*(self._loop(runtime) for runtime in self.channels.values()))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            await self._leave()

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
            except SyncedElsewhere:
                failures, delay = 0, runtime.config.poll_interval
            except Exception as exc:  # a loop must outlive anything one pass throws
                failures += 1
                delay = self._after_failure(runtime, exc, failures)
            await self._share(runtime, delay)
            raise_if_cancelled()
            await asyncio.sleep(delay)

    # -- leases (several replicas) ---------------------------------------------------------------

    async def _keep_lease(self, runtime: ChannelRuntime, pause: float = 0.0, take: bool = True) -> None:
        """Renew the lease, or take it if free and ``take``; :class:`SyncedElsewhere` when not held."""
        if self.leases is not None and not await self.leases.hold(runtime.key, pause=pause, take=take):
            raise SyncedElsewhere(runtime.key)

    async def _planned_holder(self, leases: SyncLeases, channel: str) -> str | None:
        """The replica the plan gives ``channel`` to; this one when it does not beat (a pass run on its
        own, as ``sync_once`` outside :meth:`run`): then any free channel is its to take."""
        live = await leases.live()
        if leases.holder not in live:
            return leases.holder
        if len(live) == 1:
            return live[0]
        counts = await self.store.count_by_channel()
        weights = {key: channel_weight(counts.get(key, 0)) for key in self.channels}
        return plan(self.channels, live, weights).get(channel)

    async def _share(self, runtime: ChannelRuntime, pause: float) -> None:
        """After a pass: the holder publishes its state, then keeps the lease over the pause — or hands
        it over when the plan gives the channel to another replica now; a follower reads the holder's
        state. Redis trouble here is only logged: the next pass meets it again."""
        if self.leases is None:
            return
        try:
            if runtime.synced_by is None and await self.leases.hold(runtime.key, pause=pause, take=False):
                await self.leases.publish(runtime.key, runtime.sync_state(self.leases.holder))
                planned = await self._planned_holder(self.leases, runtime.key)
                if planned != self.leases.holder:
                    await self.leases.release(runtime.key)
                    runtime.synced_by = planned
            else:
                state = await self.leases.state(runtime.key)
                if state is not None and state.holder != self.leases.holder:
                    runtime.follow(state)
                else:  # the holder has not finished a pass yet
                    runtime.synced_by = await self.leases.holder_of(runtime.key)
        except Exception as exc:
            log.warning("%s: could not share the sync state: %s", runtime.key, exc)

    @classmethod
    async def _beat(cls, leases: SyncLeases) -> None:
        while True:
            await asyncio.sleep(leases.ttl / 3)
            await cls._beat_once(leases)

    @staticmethod
    async def _beat_once(leases: SyncLeases) -> None:
        try:
            await leases.beat()
        except Exception as exc:  # Redis away: the passes meet it too; beat again next time
            log.warning("sync heartbeat failed: %s", exc)

    async def _leave(self) -> None:
        """Stopping: leave the plan and release the leases held, so the others take over at once."""
        if self.leases is None:
            return
        try:
            await self.leases.leave()
        except Exception as exc:
            log.warning("could not leave the sync plan: %s", exc)
        for key, runtime in self.channels.items():
            if runtime.synced_by is None:
                try:
                    await self.leases.release(key)
                except Exception as exc:  # shutting down: the lease lapses by itself
                    log.warning("%s: could not release the sync lease: %s", key, exc)

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

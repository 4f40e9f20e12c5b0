"""The routing worker: reads the event log and acts on new cases and clusters.

It is a consumer group (``minsheng-router``) on ``ms:events``, so each event is handled once across
gateway replicas and a crash re-reads what was not acknowledged. For each event:

* ``case.created`` — counts the case as received (受理量; 集体访 too) in the statistics, acknowledging
  the event in the same ``MULTI`` so it is counted exactly once; then routes its cluster;
* ``cluster.created`` — routes the new cluster; ``cluster.updated`` with ``change=case.clustered``
  (a report joined an incident already known) — counts a repeat;
* routing: when the routing rule is automatic ("系统自动分拨") and the cluster is still in the pool
  with nothing dispatched yet, it is dispatched at once as ``system``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import ResponseError

from casework import keys
from casework.assignments import DispatchError
from casework.cancellation import raise_if_cancelled
from casework.dispatch import Dispatcher
from casework.events import CASE_CREATED, CLUSTER_CREATED, CLUSTER_UPDATED
from casework.workdays import BEIJING
from connectors import UnifiedStatus

__all__ = ["SYSTEM_ACTOR", "Router"]

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
_ROUTABLE = frozenset({UnifiedStatus.SUBMITTED, UnifiedStatus.ACCEPTED})


async def _wait_out_the_block(asked_at: float, answered_at: float, block_ms: int) -> None:
    """Sleep what is left of a blocking read that came back empty early.

    Redis answers an empty ``XREADGROUP ... BLOCK`` only when the time is up, but the embedded store
    (fakeredis 2.40) answers at once: without this the router would spin on a core, and a spinning
    loop of fakeredis calls does not even notice being cancelled, so the gateway could not stop.
    """
    left = block_ms / 1000 - (answered_at - asked_at)
    if left > 0.05:
        await asyncio.sleep(min(left, 0.25))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Router:
    """Counts and routes what arrives; one consumer per gateway replica."""

    def __init__(
        self, dispatcher: Dispatcher, *, consumer: str = "gateway", auto_dispatch: bool = True
    ) -> None:
        self.dispatcher = dispatcher
        self.redis = dispatcher.redis
        self.consumer = consumer
        self.auto_dispatch = auto_dispatch

    async def ensure_group(self) -> None:
        try:  # from the start of the log: a first run counts and routes what is already stored
            await self.redis.xgroup_create(keys.EVENTS, keys.ROUTER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, block_ms: int = 1000) -> None:
        await self.ensure_group()
        await self.handle_batch(pending=True)  # what a previous run read but did not acknowledge
        loop = asyncio.get_running_loop()
        while True:
            try:
                asked_at = loop.time()
                if not await self.handle_batch(block_ms=block_ms):
                    await _wait_out_the_block(asked_at, loop.time(), block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._recover(exc)
            raise_if_cancelled()

    async def _recover(self, exc: Exception) -> None:
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            # the log was deleted under us (FLUSHDB, a restore): a new group counts what is there
            log.warning("the event log or the router's group vanished; creating them again")
            await self.ensure_group()
            return
        log.error("the router failed on a batch; trying again", exc_info=exc)
        await asyncio.sleep(1.0)

    async def handle_batch(
        self, *, pending: bool = False, block_ms: int | None = None, count: int = 200
    ) -> int:
        answer = await self.redis.xreadgroup(
            keys.ROUTER_GROUP,
            self.consumer,
            {keys.EVENTS: "0" if pending else ">"},
            count=count,
            block=None if pending else block_ms,
        )
        handled = 0
        for _stream, entries in answer or []:
            for entry_id, raw in entries:
                await self.handle(_text(entry_id), {_text(k): _text(v) for k, v in raw.items()})
                handled += 1
        return handled

    async def drain(self) -> None:
        """Handle everything in the log now (tests, the CLI)."""
        await self.ensure_group()
        await self.handle_batch(pending=True)
        while await self.handle_batch(block_ms=None):
            pass

    async def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        kind = fields.get("type")
        async with self.redis.pipeline(transaction=True) as pipe:
            if kind == CASE_CREATED:
                await self._count_received(pipe, fields)
            elif kind == CLUSTER_UPDATED and fields.get("change") == "case.clustered":  # a repeat report
                await self._count(pipe, "repeat", fields.get("case", ""))
            pipe.xack(keys.EVENTS, keys.ROUTER_GROUP, entry_id)
            await pipe.execute()
        if kind == CASE_CREATED:
            await self.route(await self.dispatcher.clusters.cluster_of(fields.get("case", "")))
        elif kind == CLUSTER_CREATED:
            await self.route(fields.get("cluster"))

    async def _count_received(self, pipe: Any, fields: dict[str, str]) -> None:
        case = await self._count(pipe, "received", fields.get("case", ""))
        if case is not None and case.extra.get("集体访") is True:
            self.dispatcher.stats.count_in(pipe, "group", self._dims(case))

    async def _count(self, pipe: Any, metric: str, case_key: str) -> Any:
        case = await self.dispatcher.store.get(case_key)
        if case is not None:
            self.dispatcher.stats.count_in(pipe, metric, self._dims(case))
        return case

    def _dims(self, case: Any) -> Any:
        dispatcher = self.dispatcher
        route = dispatcher.routing.suggest(case.category_id, case.region_id)
        return dispatcher.stats.dims(case, route.department_id, case.received_at.astimezone(BEIJING))

    async def route(self, cluster_id: str | None) -> None:
        """Dispatch a new cluster at once when its rule is automatic and it is still untouched."""
        if not self.auto_dispatch or not cluster_id:
            return
        try:
            cluster = await self.dispatcher.cluster(cluster_id)
            record = await self.dispatcher.record(cluster_id)
            if record.assignments or not self.dispatcher.suggest(cluster).automatic:
                return
            cases = await self.dispatcher.store.get_many(list(cluster.members))
            if any(case is None or case.status not in _ROUTABLE for case in cases):
                return  # already being handled at the source: not ours to dispatch
            await self.dispatcher.dispatch(cluster_id, SYSTEM_ACTOR, automatic=True)
        except DispatchError as exc:
            log.debug("cluster %s not dispatched automatically: %s", cluster_id, exc.message)

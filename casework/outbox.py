"""The write-back outbox: every state change of a cluster reaches each member case's source channel.

The dispatch step queues one :class:`Delivery` per member case *inside the MULTI of the change*
(:func:`enqueue_in`), so a change and its write-backs exist together or not at all. The
:class:`Outbox` worker (run in the gateway's lifespan, one per replica) delivers them through the
channel's connector (``write_back``, behind the channel's circuit breaker):

* per case, in order: a case's deliveries wait in its own list, and only the head is attempted, so a
  channel never sees "resolve" before "sign"; cases are independent of each other;
* claiming a case is a Lua compare-and-set on its due time (a lease), so two replicas never send
  the same delivery at once; the delivery id is the channel's idempotency key (``action_id``), so a
  delivery retried after a crash between sending and recording is not applied twice;
* a channel that is down or throttling is retried with exponential backoff (capped), for
  ``max_attempts`` tries — well over a day at the defaults — before the delivery is dead-lettered;
  a channel that *refuses* the action (4xx, e.g. the ticket is in a state that does not allow it)
  is dead-lettered at once with its reason. Operators list and replay the dead letters.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from casework import keys
from casework.cancellation import raise_if_cancelled
from casework.events import WRITEBACK_DELIVERED, WRITEBACK_FAILED, EventLog, event_fields
from casework.workdays import Clock, system_clock
from connectors import (
    AuthenticationFailed,
    RateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    WriteBackAction,
    WriteBackKind,
    WriteBackResult,
)

__all__ = [
    "Delivery",
    "DeliveryState",
    "Outbox",
    "delivery_id",
    "enqueue_in",
]

log = logging.getLogger(__name__)


# Claim a case's head delivery: only when it is due, and push its due time out by the lease.
_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if due and tonumber(due) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


class DeliveryState(StrEnum):
    PENDING = "PENDING"  # queued or being retried
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # dead-lettered: retries ran out, or the channel refused it


class Delivery(BaseModel):
    """One write-back of one state change to one case's source channel."""

    model_config = ConfigDict(extra="ignore")

    id: str
    case_key: str
    channel: str
    source_id: str
    kind: WriteBackKind
    message: str = ""
    actor: str
    department: str | None = None
    event: str  # the state change it reports, e.g. assignment.signed
    created_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    source_status: str | None = None
    duplicate: bool = False

    def action(self) -> WriteBackAction:
        return WriteBackAction(
            action_id=self.id,
            source_id=self.source_id,
            kind=self.kind,
            message=self.message,
            actor=self.actor,
            department=self.department,
            at=self.created_at,
        )


def delivery_id(cluster_id: str, version: int, case_key: str) -> str:
    """Stable per (change, case): the same change never yields two ids, so never two applications."""
    digest = hashlib.sha256(f"{cluster_id}\x00{version}\x00{case_key}".encode()).hexdigest()
    return f"wb-{digest[:32]}"


def enqueue_in(pipe: Any, deliveries: Iterable[Delivery], now: datetime) -> None:
    """Queue deliveries on ``pipe`` (between ``multi()`` and ``execute()``)."""
    for delivery in deliveries:
        pipe.hset(keys.OUTBOX_ITEMS, delivery.id, delivery.model_dump_json())
        pipe.rpush(keys.outbox_queue(delivery.case_key), delivery.id)
        pipe.rpush(keys.case_write_backs(delivery.case_key), delivery.id)
        pipe.zadd(keys.OUTBOX_DUE, {delivery.case_key: now.timestamp()}, nx=True)


class WriteBackChannel(Protocol):
    """What the outbox needs of a channel: :class:`casework.channels.ChannelRuntime` fits."""

    connector: Any

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any: ...


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class Outbox:
    """Delivers queued write-backs; also the operators' view of them (list, dead letters, replay).

    Args:
        redis: the gateway's Redis.
        channels: channel key → runtime (its connector and breaker).
        events: delivery outcomes are appended here, in the MULTI that records them.
        clock: answers now (tests move it).
        base_backoff, max_backoff: seconds; the n-th retry waits ``min(base * 2**(n-1), max)``.
        max_attempts: tries before a delivery is dead-lettered (default: > 1 day at the defaults).
        lease: seconds a claimed case is held before another worker may take it over.
    """

    def __init__(
        self,
        redis: Any,
        channels: Mapping[str, WriteBackChannel],
        events: EventLog,
        *,
        clock: Clock = system_clock,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        max_attempts: int = 300,
        lease: float = 60.0,
    ) -> None:
        self.redis = redis
        self.channels = channels
        self.events = events
        self.clock = clock
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_attempts = max(1, max_attempts)
        self.lease = lease
        self._claim = redis.register_script(_CLAIM)

    # -- the worker ----------------------------------------------------------------------------

    async def run(self, interval: float = 0.5, batch: int = 50) -> None:
        """Deliver until cancelled; sleeps ``interval`` only when nothing was due."""
        while True:
            try:
                handled = await self.deliver_due(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbox pass failed; trying again")
                handled = 0
            raise_if_cancelled()
            if handled == 0:
                await asyncio.sleep(interval)

    async def deliver_due(self, batch: int = 50) -> int:
        """One pass: attempt the head delivery of up to ``batch`` due cases; returns how many were tried."""
        now = self.clock().timestamp()
        due = await self.redis.zrangebyscore(keys.OUTBOX_DUE, "-inf", now, start=0, num=batch)
        tried = 0
        for raw in due:
            case_key = _text(raw) or ""
            if await self._claim(keys=[keys.OUTBOX_DUE], args=[case_key, now, now + self.lease]):
                tried += await self._deliver_head(case_key)
        return tried

    async def drain(self, rounds: int = 20) -> None:
        """Deliver everything due now, pass after pass (tests and the CLI)."""
        for _ in range(rounds):
            if await self.deliver_due() == 0:
                return

    async def _deliver_head(self, case_key: str) -> int:
        head = _text(await self.redis.lindex(keys.outbox_queue(case_key), 0))
        delivery = await self.get(head) if head else None
        if delivery is None:
            if head:
                await self.redis.lpop(keys.outbox_queue(case_key))  # a stray id: drop it
            await self.redis.zrem(keys.OUTBOX_DUE, case_key)
            if await self.redis.llen(keys.outbox_queue(case_key)):  # enqueued meanwhile: keep it due
                await self.redis.zadd(keys.OUTBOX_DUE, {case_key: self.clock().timestamp()})
            return 0
        runtime = self.channels.get(delivery.channel)
        if runtime is None:
            await self._finish(
                delivery, DeliveryState.DEAD, error=f"channel {delivery.channel!r} is not configured"
            )
            return 1
        try:
            result: WriteBackResult = await runtime.call(
                lambda: runtime.connector.write_back(delivery.action())
            )
        except (RateLimited, UpstreamUnavailable, AuthenticationFailed) as exc:
            await self._retry(delivery, exc)
        except UpstreamRejected as exc:
            await self._finish(delivery, DeliveryState.DEAD, error=f"refused by the channel: {exc}")
        except NotImplementedError as exc:
            await self._finish(delivery, DeliveryState.DEAD, error=str(exc))
        else:
            await self._finish(delivery, DeliveryState.DELIVERED, result=result)
        return 1

    async def _retry(self, delivery: Delivery, exc: Exception) -> None:
        attempts = delivery.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        if attempts >= self.max_attempts:
            await self._finish(
                delivery.model_copy(update={"attempts": attempts}),
                DeliveryState.DEAD,
                error=f"gave up after {attempts} attempts: {error}",
            )
            return
        wait = min(self.base_backoff * 2 ** (attempts - 1), self.max_backoff)
        if isinstance(exc, RateLimited):
            wait = max(wait, exc.retry_after)
        when = self.clock() + timedelta(seconds=wait)
        updated = delivery.model_copy(
            update={"attempts": attempts, "last_error": error, "next_attempt_at": when}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.OUTBOX_ITEMS, delivery.id, updated.model_dump_json())
            pipe.zadd(keys.OUTBOX_DUE, {delivery.case_key: when.timestamp()})
            await pipe.execute()

    async def _finish(
        self,
        delivery: Delivery,
        state: DeliveryState,
        *,
        error: str | None = None,
        result: WriteBackResult | None = None,
    ) -> None:
        """Record the outcome, take the delivery off its case's queue and make the next one due."""
        now = self.clock()
        update: dict[str, Any] = {"state": state, "next_attempt_at": None}
        if result is not None:
            update |= {
                "attempts": delivery.attempts + 1,
                "delivered_at": now,
                "source_status": result.source_status,
                "duplicate": result.duplicate,
                "last_error": None,
            }
        else:
            update["last_error"] = error
        done = delivery.model_copy(update=update)
        queue = keys.outbox_queue(delivery.case_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.OUTBOX_ITEMS, delivery.id, done.model_dump_json())
            pipe.lrem(queue, 1, delivery.id)
            pipe.zadd(keys.OUTBOX_DUE, {delivery.case_key: now.timestamp()})  # the next one, if any
            if state is DeliveryState.DEAD:
                pipe.lpush(keys.OUTBOX_DEAD, delivery.id)
            else:  # the channel's record changed: the cached live copy is stale now
                pipe.delete(keys.source_cache(delivery.channel, delivery.source_id))
            self.events.append_in(
                pipe,
                WRITEBACK_DELIVERED if result is not None else WRITEBACK_FAILED,
                event_fields(
                    cases=[delivery.case_key],
                    channels=[delivery.channel],
                    at=now,
                    delivery=delivery.id,
                    kind=delivery.kind.value,
                    state=state.value,
                    event=delivery.event,
                ),
            )
            await pipe.execute()
        if state is DeliveryState.DEAD:
            log.warning("write-back %s to %s dead-lettered: %s", delivery.id, delivery.channel, error)

    # -- reading and replay --------------------------------------------------------------------

    async def get(self, delivery_id_: str) -> Delivery | None:
        raw = _text(await self.redis.hget(keys.OUTBOX_ITEMS, delivery_id_))
        return None if raw is None else Delivery.model_validate_json(raw)

    async def _many(self, ids: list[str]) -> list[Delivery]:
        if not ids:
            return []
        raws = await self.redis.hmget(keys.OUTBOX_ITEMS, ids)
        return [Delivery.model_validate_json(r) for r in (_text(x) for x in raws) if r is not None]

    async def for_case(self, case_key: str) -> list[Delivery]:
        """Every delivery of a case, oldest first (``Case.writeBacks``)."""
        ids = [_text(x) or "" for x in await self.redis.lrange(keys.case_write_backs(case_key), 0, -1)]
        return await self._many(ids)

    async def dead_letters(self, limit: int = 100) -> list[Delivery]:
        ids = [_text(x) or "" for x in await self.redis.lrange(keys.OUTBOX_DEAD, 0, max(0, limit - 1))]
        return await self._many(ids)

    async def replay(self, delivery_id_: str) -> Delivery | None:
        """Put a dead-lettered delivery back on its case's queue (same id: still idempotent)."""
        delivery = await self.get(delivery_id_)
        if delivery is None or delivery.state is not DeliveryState.DEAD:
            return None
        again = delivery.model_copy(
            update={"state": DeliveryState.PENDING, "attempts": 0, "next_attempt_at": None}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(keys.OUTBOX_DEAD, 0, delivery.id)
            pipe.hset(keys.OUTBOX_ITEMS, delivery.id, again.model_dump_json())
            pipe.rpush(keys.outbox_queue(delivery.case_key), delivery.id)
            pipe.zadd(keys.OUTBOX_DUE, {delivery.case_key: self.clock().timestamp()}, nx=True)
            await pipe.execute()
        return again

    async def pending_count(self) -> int:
        return int(await self.redis.zcard(keys.OUTBOX_DUE))

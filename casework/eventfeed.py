"""The live side of the event log: one reader per gateway process, fanned out to local subscribers.

A process runs one :class:`EventFeed` (started in the app's lifespan). Its loop blocks on ``XREAD``
after the last entry it saw and hands each entry, parsed once, to every local subscriber whose
``accept`` wants it — a thousand subscribers cost one Redis connection, not a thousand blocking
reads. Each replica of the gateway runs its own feed over the same stream, so each delivers every
event to its own subscribers.

:meth:`EventFeed.follow` is what a subscription iterates: with a cursor it first replays the log
after it (``XRANGE`` pages, :meth:`EventLog.read_after`), then continues live. The hand-over has no
gap and no duplicate because the subscriber is registered with the feed *before* the replay starts:
the feed queues every event after its position at registration, the replay reads up to the end of
the log (at or past that position), and queued events at or before the last one replayed are
skipped. A subscriber too slow to keep up (its queue full) is not dropped: it falls back to
replaying from its own last cursor, then joins the live feed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from casework.cancellation import raise_if_cancelled
from casework.events import Event, EventLog, compare_ids

__all__ = ["EventFeed", "Tap"]

log = logging.getLogger(__name__)

Accept = Callable[[Event], bool]


class _Overflow(Exception):
    """A tap's queue filled up: its subscriber must catch up from the log."""


class Tap:
    """One local subscriber's queue on the feed."""

    __slots__ = ("_ready", "accept", "limit", "overflowed", "queue")

    def __init__(self, accept: Accept, limit: int) -> None:
        self.accept = accept
        self.limit = limit
        self.queue: deque[Event] = deque()
        self.overflowed = False
        self._ready = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.overflowed or not self.accept(event):
            return
        if len(self.queue) >= self.limit:
            self.overflowed = True
            self.queue.clear()  # the log still holds them; the subscriber replays from its cursor
        else:
            self.queue.append(event)
        self._ready.set()

    async def next(self) -> Event:
        while not self.queue:
            if self.overflowed:
                raise _Overflow
            self._ready.clear()
            await self._ready.wait()
        return self.queue.popleft()


class EventFeed:
    """The process's one live reader of the event log.

    Args:
        log: the event log.
        block_ms: how long one ``XREAD`` blocks before the loop looks around (under the client's
            socket timeout, 5 s by default in redis-py).
        queue_limit: events a subscriber may fall behind before it replays from the log instead.
        trim_every: seconds between retention trims (:meth:`EventLog.trim`); 0 never trims.
    """

    def __init__(self, log: EventLog, *, block_ms: int = 2000, batch: int = 500, queue_limit: int = 1000,
                 replay_page: int = 500, trim_every: float = 60.0) -> None:
        self.log = log
        self.block_ms = block_ms
        self.batch = batch
        self.queue_limit = queue_limit
        self.replay_page = replay_page
        self.trim_every = trim_every
        self.position: str | None = None
        self._taps: set[Tap] = set()
        self._started = asyncio.Event()
        self._last_trim = 0.0

    @property
    def subscribers(self) -> int:
        """Live local subscribers (a client that vanished must not stay counted)."""
        return len(self._taps)

    async def run(self) -> None:
        """Read the stream forever, fanning out; a Redis hiccup is logged and retried."""
        self.position = await self.log.last_id()
        self._started.set()
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting, a network blip: keep the position, try again
                log.warning("event feed: reading %s failed (%s); retrying", self.log.stream, exc)
                await asyncio.sleep(1.0)
            raise_if_cancelled()

    async def _step(self) -> None:
        assert self.position is not None
        answer: Any = await self.log.redis.xread({self.log.stream: self.position}, count=self.batch,
                                                 block=self.block_ms)
        for _stream, items in answer or []:
            for entry_id, fields in items:
                self.publish(self.log.parse(entry_id, fields))
        await self._maybe_trim()

    def publish(self, event: Event) -> None:
        """Hand one event to every local subscriber (synchronously: registration cannot interleave)."""
        self.position = event.id
        for tap in tuple(self._taps):
            tap.offer(event)

    async def _maybe_trim(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.trim_every and now - self._last_trim >= self.trim_every:
            self._last_trim = now
            removed = await self.log.trim()
            if removed:
                log.info("event log: %d entries past retention removed", removed)

    async def started(self) -> str:
        await self._started.wait()
        assert self.position is not None
        return self.position

    async def follow(self, after: str | None, accept: Accept) -> AsyncIterator[Event]:
        """Every accepted event after ``after`` (``None``: from now on), replayed then live, in order.

        Raises:
            BadCursor, CursorExpired: from the replay, before anything is yielded for that cursor.
        """
        await self.started()
        last = after
        while True:
            tap = Tap(accept, self.queue_limit)
            self._taps.add(tap)
            try:
                if last is None:
                    last = self.position
                else:
                    async for event in self._replay(last, accept):
                        last = event.id
                        if accept(event):
                            yield event
                while True:
                    event = await tap.next()
                    if last is not None and compare_ids(event.id, last) <= 0:
                        continue  # already replayed
                    last = event.id
                    yield event
            except _Overflow:
                log.info("event feed: a subscriber fell %d events behind; it replays from %s",
                         self.queue_limit, last)
            finally:
                self._taps.discard(tap)

    async def _replay(self, after: str, accept: Accept) -> AsyncIterator[Event]:
        """The log after ``after`` up to its current end, every entry (the caller filters)."""
        cursor = after
        while True:
            page = await self.log.read_after(cursor, count=self.replay_page)
            for event in page:
                yield event
            if len(page) < self.replay_page:
                return
            cursor = page[-1].id


@contextlib.asynccontextmanager
async def running(feed: EventFeed) -> AsyncIterator[EventFeed]:
    """Run ``feed`` for the duration of the block (the lifespan's way to start and stop it)."""
    task = asyncio.create_task(feed.run(), name="minsheng-event-feed")
    try:
        await asyncio.wait_for(feed.started(), timeout=30)
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

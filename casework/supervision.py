"""督办: yellow and red cards drawn as time passes, each announced once by a ``card.issued`` event.

Cards are a function of the clock (:func:`casework.deadlines.timing`), so every read shows the
current one; :class:`Supervisor` sweeps the open assignments now and then and appends one
``card.issued`` event when an assignment's card rises (none → yellow → red), so subscribers and the
dashboard hear of it without polling. What was announced is kept per assignment (``ms:{dx}:cards``),
under ``WATCH``, so two gateway replicas sweeping at once announce a card once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import WatchError

from casework import keys
from casework.assignments import split_assignment_id
from casework.cancellation import raise_if_cancelled
from casework.deadlines import Card
from casework.dispatch import Dispatcher
from casework.events import CARD_ISSUED, event_fields

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

_RANK = {Card.NONE: 0, Card.YELLOW: 1, Card.RED: 2}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Supervisor:
    """Announces cards as open assignments approach and pass their deadlines."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.redis = dispatcher.redis

    async def run(self, interval: float = 60.0) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the supervision sweep failed; trying again")
            raise_if_cancelled()
            await asyncio.sleep(interval)

    async def sweep(self) -> int:
        """One pass over the open assignments; returns how many cards were announced."""
        ids = [_text(x) for x in await self.redis.zrange(keys.OPEN_ASSIGNMENTS, 0, -1)]
        announced = 0
        for assignment_id in ids:
            announced += await self._check(assignment_id)
        return announced

    async def _check(self, assignment_id: str) -> int:
        cluster_id, _ = split_assignment_id(assignment_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(10):
                try:
                    await pipe.watch(keys.ASSIGNMENT_CARDS)
                    shown = Card(
                        _text(await pipe.hget(keys.ASSIGNMENT_CARDS, assignment_id) or Card.NONE.value)
                    )
                    record = await self.dispatcher.record(cluster_id)
                    current = record.current
                    if current is None or current.id != assignment_id or not current.open:
                        return 0
                    card = self.dispatcher.timing(record).card
                    if _RANK[card] <= _RANK[shown]:
                        return 0
                    now = self.dispatcher.clock()
                    pipe.multi()
                    pipe.hset(keys.ASSIGNMENT_CARDS, assignment_id, card.value)
                    self.dispatcher.events.append_in(
                        pipe,
                        CARD_ISSUED,
                        event_fields(
                            cases=record.members,
                            cluster=cluster_id,
                            departments=[current.department_id],
                            at=now,
                            assignment=assignment_id,
                            card=card.value,
                        ),
                    )
                    await pipe.execute()
                    return 1
                except WatchError:
                    await pipe.reset()
        return 0

"""The event log: the one Redis Stream every change of state is appended to.

Writers append *inside* the ``MULTI`` that makes the change (:meth:`EventLog.append_in`), so an
event exists exactly when its change does. Each entry is flat string fields: ``type`` (e.g.
``case.created``) plus the type's payload. Readers resume after the last id they saw; consumer
groups for subscriptions and the outbox grow from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio.client import Pipeline

from casework import keys

__all__ = ["CASE_CREATED", "CASE_UPDATED", "EventLog"]

CASE_CREATED = "case.created"
CASE_UPDATED = "case.updated"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class EventLog:
    """Appends to and reads the ``ms:events`` stream.

    Args:
        redis: the gateway's Redis client (``redis.asyncio.Redis`` or the embedded twin).
        maxlen: the stream is trimmed (approximately) to this many entries.
    """

    def __init__(self, redis: Any, *, maxlen: int = 1_000_000) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self.stream = keys.EVENTS

    def append_in(self, pipe: Pipeline, type: str, payload: Mapping[str, str]) -> None:
        """Queue one entry on ``pipe`` — call it between ``pipe.multi()`` and ``execute()``."""
        fields: dict[Any, Any] = {"type": type}
        fields.update({name: value for name, value in payload.items() if name != "type"})
        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    async def append(self, type: str, payload: Mapping[str, str]) -> str:
        """Append one entry on its own (for changes that touch nothing else); returns its id."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.append_in(pipe, type, payload)
            [entry_id] = await pipe.execute()
        return _text(entry_id)

    async def read(self, after: str = "0-0", count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` entries with ids after ``after``, oldest first (no blocking)."""
        answer = await self.redis.xread({self.stream: after}, count=count)
        entries: list[tuple[str, dict[str, str]]] = []
        for _stream, items in answer or []:
            for entry_id, fields in items:
                entries.append((_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
        return entries

    async def last_id(self) -> str:
        """The id of the newest entry, ``0-0`` when the stream is empty."""
        newest = await self.redis.xrevrange(self.stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def length(self) -> int:
        return int(await self.redis.xlen(self.stream))

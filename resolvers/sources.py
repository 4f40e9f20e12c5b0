"""``Case.source``: the live record from the channel system, batched per channel and cached in Redis.

One :class:`SourceLoader` per channel and request collects every ``Case.source`` key the query
asks for, serves what the Redis source cache holds, and fetches the rest with as few
``connector.get_many`` calls as the channel's batch limit allows, through the channel's circuit
breaker and under a per-channel timeout. A failure fails only that channel's keys, with a typed
error (:class:`~resolvers.errors.UpstreamFailure` / :class:`~resolvers.errors.UpstreamRateLimited`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader
from pydantic import BaseModel, ValidationError

from auth.rights import CaseFacts
from casework.model import HealthStatus
from connectors import RateLimited, SourceRecord, UpstreamError, utc_now
from resolvers.errors import UpstreamFailure, UpstreamRateLimited

if TYPE_CHECKING:
    from casework.channels import ChannelRuntime
    from resolvers.context import Resources

__all__ = ["ScopedRecord", "SourceLoader", "SourceView", "scoped_records"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceView:
    """A live record as the graph serves it: the connector's record plus where it came from.

    ``connector`` (the entry-point name) picks the record's GraphQL type; unknown attributes are
    read from ``record``, so the generated type's fields resolve straight from the model.
    """

    record: SourceRecord
    connector: str
    fetched_at: datetime
    stale: bool
    facts: CaseFacts | None = None  # the case it belongs to, for masking its personal fields
    unmask: bool = False            # the viewer asked for personal data in clear (granted per field)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # strawberry probes for private markers: not the record's business
            raise AttributeError(name)
        return getattr(self.record, name)


@dataclass(frozen=True, slots=True)
class ScopedRecord:
    """A nested part of a live record (a party list's entry), carrying its case's facts for masking."""

    record: BaseModel
    facts: CaseFacts
    unmask: bool = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.record, name)


def scoped_records(value: Any, facts: CaseFacts, unmask: bool) -> Any:
    """``value`` (a nested model or a list of them) wrapped so its fields are masked with ``facts``."""
    if isinstance(value, list):
        return [scoped_records(item, facts, unmask) for item in value]
    return ScopedRecord(value, facts, unmask) if isinstance(value, BaseModel) else value


Outcome = SourceView | None | Exception


class SourceLoader(DataLoader[str, SourceView | None]):
    """Loads ``Case.source`` for one channel; keys are the channel's source ids."""

    def __init__(self, runtime: ChannelRuntime, resources: Resources) -> None:
        super().__init__(cache=True)
        self.runtime = runtime
        self.resources = resources
        self.channel = runtime.config.key
        self.connector = runtime.connector

    async def batch_load_fn(self, keys: list[str]) -> list[Outcome]:  # type: ignore[override]
        outcomes: dict[str, Outcome] = dict(await self._from_cache(keys))
        missing = [key for key in dict.fromkeys(keys) if key not in outcomes]
        if missing:
            outcomes.update(await self._fetch(missing))
        return [outcomes.get(key) for key in keys]

    async def _from_cache(self, keys: Sequence[str]) -> Mapping[str, SourceView]:
        cached = await self.resources.store.cached_sources(self.channel, list(dict.fromkeys(keys)))
        if not cached:
            return {}
        stale = self._channel_unhealthy()
        views: dict[str, SourceView] = {}
        for key, (raw, fetched_at) in cached.items():
            try:
                record = self.connector.source_model.model_validate_json(raw)
            except ValidationError:
                continue  # written by an older connector version: fetch it afresh
            views[key] = SourceView(record, self.runtime.config.connector, fetched_at, stale)
        return views

    def _channel_unhealthy(self) -> bool:
        # A cached copy is only as fresh as the last sync: while the channel is not up, changes
        # may have happened that the gateway has not heard of, so the record is marked stale.
        return self.runtime.health(0, 0).status is not HealthStatus.UP

    async def _fetch(self, keys: list[str]) -> dict[str, Outcome]:
        limit = max(1, self.connector.describe().capabilities.batch_limit)
        chunks = [keys[i:i + limit] for i in range(0, len(keys), limit)]
        results = await asyncio.gather(*(self._fetch_chunk(chunk) for chunk in chunks),
                                       return_exceptions=True)
        outcomes: dict[str, Outcome] = {}
        fresh: dict[str, str] = {}
        fetched_at = utc_now()
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and the like are not a channel's failure
                error = self._translate(result)
                outcomes.update({key: error for key in chunk})
                continue
            for key in chunk:
                record = result.get(key)
                outcomes[key] = None if record is None else SourceView(
                    record, self.runtime.config.connector, fetched_at, stale=False)
                if record is not None:
                    fresh[key] = record.model_dump_json()
        if fresh:
            ttl = self.resources.limits.source_cache_ttl
            await self.resources.store.cache_sources(self.channel, fresh, ttl)
        return outcomes

    async def _fetch_chunk(self, chunk: list[str]) -> Mapping[str, SourceRecord | None]:
        timeout = min(self.runtime.config.timeout, self.resources.limits.source_timeout)
        try:
            async with asyncio.timeout(timeout):
                result = await self.runtime.call(lambda: self.connector.get_many(chunk))
        except RateLimited:
            self.resources.observe_upstream(self.channel, "rate_limited")
            raise
        except (UpstreamError, TimeoutError):
            self.resources.observe_upstream(self.channel, "unavailable")
            raise
        self.resources.observe_upstream(self.channel, "ok")
        return result

    def _translate(self, error: BaseException) -> Exception:
        name = self.runtime.config.name
        if isinstance(error, RateLimited):
            return UpstreamRateLimited(f"channel {self.channel} ({name}) is throttling requests",
                                       channel=self.channel, retryAfter=error.retry_after)
        if isinstance(error, TimeoutError):
            return UpstreamFailure(f"channel {self.channel} ({name}) did not answer in time",
                                   channel=self.channel)
        if isinstance(error, UpstreamError):
            return UpstreamFailure(f"channel {self.channel} ({name}) is unavailable", channel=self.channel)
        log.error("fetching source records from %s failed", self.channel, exc_info=error)
        return UpstreamFailure(f"channel {self.channel} ({name}) is unavailable", channel=self.channel)

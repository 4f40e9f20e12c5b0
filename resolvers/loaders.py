"""Per-request DataLoaders (cases by key, live sources per channel, per-channel counts) and memos."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiodataloader import DataLoader

from auth.rights import CaseFacts, Scope
from casework.access import departments_of
from casework.model import StoredCase
from resolvers.sources import SourceLoader

if TYPE_CHECKING:
    from resolvers.context import Resources

__all__ = ["CaseLoader", "Loaders"]


class CaseLoader(DataLoader[str, StoredCase | None]):
    """Cases by store key, one pipelined ``store.get_many`` per tick."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(cache=True)
        self.resources = resources

    async def batch_load_fn(self, keys: list[str]) -> list[StoredCase | None]:
        return list(await self.resources.store.get_many(keys))


class CaseDepartmentsLoader(DataLoader[str, frozenset[str]]):
    """The departments each case is assigned or summoned to (for its rights), one pipeline per tick."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(cache=True)
        self.resources = resources

    async def batch_load_fn(self, keys: list[str]) -> list[frozenset[str]]:
        return await departments_of(self.resources.store.redis, keys)


class CaseCountLoader(DataLoader[str, int]):
    """Cases stored per channel: one ``count_by_channel`` however many channels ask."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(cache=True)
        self.resources = resources

    async def batch_load_fn(self, channels: list[str]) -> list[int]:
        counts = await self.resources.store.count_by_channel()
        return [counts.get(channel, 0) for channel in channels]


class ClusterMembersLoader(DataLoader[str, list[str]]):
    """The case keys of clusters (民声云), one pipeline per tick; [] where clusters are not kept."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(cache=True)
        self.resources = resources

    async def batch_load_fn(self, cluster_ids: list[str]) -> list[list[str]]:
        clusters = self.resources.clusters
        return [[] for _ in cluster_ids] if clusters is None else await clusters.members_many(cluster_ids)


class QuarantineCountLoader(DataLoader[str, int]):
    def __init__(self, resources: Resources) -> None:
        super().__init__(cache=True)
        self.resources = resources

    async def batch_load_fn(self, channels: list[str]) -> list[int]:
        store = self.resources.store
        return list(await asyncio.gather(*(store.quarantine_count(channel) for channel in channels)))


class Loaders:
    """The DataLoaders of one request; their caches die with it."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.cases = CaseLoader(resources)
        self.case_departments = CaseDepartmentsLoader(resources)
        self.case_counts = CaseCountLoader(resources)
        self.cluster_members = ClusterMembersLoader(resources)
        self.quarantine_counts = QuarantineCountLoader(resources)
        self._sources: dict[str, SourceLoader] = {}
        self.facts: dict[str, CaseFacts] = {}  # case key → what the rights policy needs to know
        self.scope: Scope | None = None        # the viewer's case scope, worked out once

    def source(self, channel: str) -> SourceLoader | None:
        """The source loader of ``channel``, or ``None`` when no such channel is configured."""
        loader = self._sources.get(channel)
        if loader is None:
            runtime = self.resources.channels.get(channel)
            if runtime is None:
                return None
            loader = self._sources[channel] = SourceLoader(runtime, self.resources)
        return loader

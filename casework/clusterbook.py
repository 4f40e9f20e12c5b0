"""What dispatch needs of the cluster store, as a small protocol with two implementations.

Dispatch reads a cluster's members, category, place and size after ``WATCH``-ing it, and queues its
new status (and department, deadline, overdue flag) inside its own ``MULTI``, so a merge or split
racing a dispatch makes one of them retry instead of half-applying.

* :class:`StoreClusters` adapts the 民声云 cluster store (:mod:`casework.clusters`): it rewrites the
  cluster's status, department, deadline and overdue flag through the store's ``write_in`` without an
  event of its own, so the dispatch change stays one event;
* :class:`SingleCaseClusters` treats every case as its own cluster (cluster id = case key): for
  deployments without dedup, and for tests of the dispatch step alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from casework import keys
from casework.clusters import CLOSED_STATUSES, ClusterStore
from casework.store import CaseStore
from connectors import UnifiedStatus

__all__ = ["ClusterBook", "ClusterView", "SingleCaseClusters", "StoreClusters"]


@dataclass(frozen=True, slots=True)
class ClusterView:
    id: str
    title: str
    members: tuple[str, ...]  # case keys, oldest report first
    channels: tuple[str, ...]
    category_id: str | None
    region_id: str | None
    head_count: int = 1
    handle: Any = None  # the implementation's own loaded state, handed back to update_in

    @property
    def case_count(self) -> int:
        return len(self.members)


class ClusterBook(Protocol):
    def watch_keys(self, cluster_id: str) -> Sequence[str]: ...

    async def load(self, reader: Any, cluster_id: str) -> ClusterView | None:
        """The cluster, read through ``reader`` (a pipeline in watch mode, or the client)."""

    def update_in(
        self,
        pipe: Any,
        cluster: ClusterView,
        *,
        status: UnifiedStatus,
        department_id: str | None,
        deadline: datetime | None,
        overdue: bool,
        by: str,
        at: datetime,
    ) -> None:
        """Queue the cluster's new dispatch facts on ``pipe`` (after ``multi()``)."""

    async def cluster_of(self, case_key: str) -> str | None: ...


class SingleCaseClusters:
    """Every case is a cluster of one; the status lives in the dispatch record only."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def watch_keys(self, cluster_id: str) -> Sequence[str]:
        return [keys.case(cluster_id)]

    async def load(self, reader: Any, cluster_id: str) -> ClusterView | None:
        case = await self.store.get(cluster_id)
        if case is None:
            return None
        people = case.extra.get("人数")
        return ClusterView(
            id=case.key,
            title=case.title,
            members=(case.key,),
            channels=(case.channel,),
            category_id=case.category_id,
            region_id=case.region_id,
            head_count=int(people) if isinstance(people, int | float) and people else 1,
        )

    def update_in(
        self,
        pipe: Any,
        cluster: ClusterView,
        *,
        status: UnifiedStatus,
        department_id: str | None,
        deadline: datetime | None,
        overdue: bool,
        by: str,
        at: datetime,
    ) -> None:
        return None

    async def cluster_of(self, case_key: str) -> str | None:
        return case_key if await self.store.get(case_key) is not None else None


class StoreClusters:
    """The 民声云 cluster store, as dispatch sees it."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    def watch_keys(self, cluster_id: str) -> Sequence[str]:
        return [keys.cluster(cluster_id)]

    async def load(self, reader: Any, cluster_id: str) -> ClusterView | None:
        try:
            cluster, sigs, ix = await self.store.load_full(reader, cluster_id)
        except KeyError:
            return None
        members = tuple(await self.store.members(cluster, reader))
        return ClusterView(id=cluster.id, title=cluster.title, members=members,
                           channels=cluster.channels, category_id=cluster.category_id,
                           region_id=cluster.region_id, head_count=cluster.head_count,
                           handle=(cluster, sigs, ix))

    def update_in(self, pipe: Any, cluster: ClusterView, *, status: UnifiedStatus, department_id: str | None,
                  deadline: datetime | None, overdue: bool, by: str, at: datetime) -> None:
        record, sigs, ix = cluster.handle
        changed = replace(record, status=status, closed_at=at if status in CLOSED_STATUSES else None,
                          department_id=department_id, deadline=deadline, overdue=overdue)
        new_ix = {k for k in ix if not k.startswith(keys.cluster_index("dep", ""))}
        if department_id:
            new_ix.add(keys.cluster_index("dep", department_id))
        self.store.write_in(pipe, changed, sigs, old_ix=ix, cases=(), new_ix=new_ix)
        if overdue:
            pipe.sadd(keys.CLUSTER_OVERDUE, record.id)
        else:
            pipe.srem(keys.CLUSTER_OVERDUE, record.id)

    async def cluster_of(self, case_key: str) -> str | None:
        return await self.store.cluster_of(case_key)

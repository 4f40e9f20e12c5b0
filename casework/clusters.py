"""The cluster store: 民声云 dispatch units — every case belongs to exactly one cluster.

A cluster is what gets dispatched. It is one hash (``keys.cluster``) holding its record as JSON (``doc``)
and the index keys it is filed under (``ix``; but its residents', which are only ever added), and a
sorted set of its case keys (``keys.cluster_cases``), so that what a join reads and writes does not grow
with the cluster (a mass incident takes thousands of reports). The dedup signatures of its latest
members, all the matcher reads of it, sit in one hash of the index slot (``keys.CLUSTER_SIGNATURES``), so
that retrieving the candidates of a new case and reading their signatures is one command. The case hash
records its cluster (field ``cluster``), and so does ``keys.CLUSTER_OF`` (read by retrieval and by the
dispatch view's text filter). Every change — a page of cases clustered, a cluster created, merged, split,
its status or dispatch facts set — is one ``MULTI`` that moves exactly the index memberships that differ
and appends exactly one event per case clustered or correction made. How a record is read and a write
queued is :mod:`casework.clusterrecord`'s.

Public API (issue 5, dispatch, builds on it):

* :meth:`ClusterStore.assign_many` / :meth:`assign` / :meth:`assign_pending` — intake's hook: cluster
  a page of newly stored cases (the decisions are :mod:`casework.clusterbatch`'s), or one;
* :meth:`ClusterStore.get`, :meth:`get_many`, :meth:`members`, :meth:`members_many`, :meth:`cluster_of`,
  :meth:`search` (the dispatch view);
* :meth:`ClusterStore.merge`, :meth:`split` — dispatchers' corrections (never undone automatically);
* :meth:`ClusterStore.set_status` — the lifecycle (its own event ``cluster.status``), and
  :meth:`ClusterStore.set_dispatch` — department, deadline and overdue flag, which the dispatch
  view filters and sorts on; both also as ``*_in(pipe, …)`` to join a caller's own ``MULTI``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from redis.exceptions import LockError, WatchError

from casework import keys
from casework.clusterbatch import Filed, Placements, place
from casework.clusterindex import (
    ClusterPage,
    ClusterQuery,
    ClusterSort,
    search_clusters,
)
from casework.clustermodel import (
    CLOSED_STATUSES,
    MAX_SIGNATURES,
    Cluster,
    ClusterConflict,
    MergeReason,
    cluster_event,
    first_and_latest,
    new_cluster,
    with_case,
    with_risk,
)
from casework.clusterrecord import (
    ClusterWrite,
    Loaded,
    TouchedCluster,
    load_ix,
    load_sigs,
    queue_writes,
    read_many,
    text_of,
)
from casework.dedup import BLOCK_FETCH, Signature, Thresholds, oldest_candidate, signature
from casework.events import CLUSTER_CREATED, CLUSTER_UPDATED, EventLog
from casework.model import StoredCase
from casework.reference import Reference
from casework.store import CaseStore
from connectors import UnifiedStatus, utc_now

__all__ = ["CLOSED_STATUSES", "MAX_SIGNATURES", "Cluster", "ClusterConflict", "ClusterPage", "ClusterQuery",
           "ClusterSort", "ClusterStore", "ClusterWrite", "MergeReason", "cluster_event", "first_and_latest",
           "new_cluster", "with_case", "with_risk"]

# The event types are casework.events' vocabulary: cluster.created (a new cluster with its first case),
# cluster.updated (``change`` = case.clustered | status | dispatch), cluster.merged, cluster.split.

log = logging.getLogger(__name__)

MAX_RETRIES = 50
LOCK_SECONDS = 10.0
"""How long the store-wide clustering lock outlives a replica that died holding it (a page takes
~0.1 s)."""
LOCK_POLL = 0.002
"""How often a replica waiting for the clustering lock tries again (seconds)."""
ASSIGN_PAGE = 100
"""Cases clustered in one batch at most: a bigger page is clustered in parts of this size."""


class ClusterStore:
    """Clusters in Redis, and the clustering of new cases.

    Args:
        redis: the store's Redis.
        cases: the case store (cases are read from it; their hashes record their cluster).
        reference: regions and categories (signatures and index memberships).
        events: the event log changes are appended to.
        thresholds: the matcher's decision knobs.
    """

    def __init__(self, redis: Any, cases: CaseStore, reference: Reference, *, events: EventLog | None = None,
                 thresholds: Thresholds | None = None, query_cache_seconds: int = 10) -> None:
        self.redis = redis
        self.cases = cases
        self.reference = reference
        self.events = events or cases.events
        self.thresholds = thresholds or Thresholds()
        self._query_ttl = max(1, query_cache_seconds)
        self.examined: list[int] = []   # candidates examined per assigned case (for the bench), when enabled
        self.record_examined = False
        # one page clustered at a time in this process: two pages deciding at once would each miss the
        # clusters the other is about to create (the same incident through two channels, two clusters)
        self._clustering = asyncio.Lock()

    # -- reading -------------------------------------------------------------------------------

    async def get(self, cluster_id: str) -> Cluster | None:
        [found] = await self.get_many([cluster_id])
        return found

    async def get_many(self, cluster_ids: Sequence[str]) -> list[Cluster | None]:
        if not cluster_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cluster_id in cluster_ids:
                pipe.hget(keys.cluster(cluster_id), "doc")
            docs = await pipe.execute()
        return [None if doc is None else Cluster.load(text_of(doc)) for doc in docs]

    async def members(self, cluster: Cluster, reader: Any = None) -> list[str]:
        """The keys of the cluster's cases, oldest report first, read through ``reader`` (a watching
        pipeline; the client when None)."""
        if cluster.legacy_cases is not None:
            return list(cluster.legacy_cases)
        listed = await (reader or self.redis).zrange(keys.cluster_cases(cluster.id), 0, -1)
        return [text_of(k) for k in listed]

    async def members_many(self, cluster_ids: Sequence[str]) -> list[list[str]]:
        """:meth:`members` of several clusters in one round trip ([] for an unknown cluster)."""
        if not cluster_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cluster_id in cluster_ids:
                pipe.zrange(keys.cluster_cases(cluster_id), 0, -1)
            found = [[text_of(k) for k in keys_] for keys_ in await pipe.execute()]
        unlisted = [n for n, listed in enumerate(found) if not listed]  # none, or written before the lists
        for n, cluster in zip(unlisted, await self.get_many([cluster_ids[n] for n in unlisted]), strict=True):
            found[n] = list(cluster.legacy_cases or ()) if cluster is not None else []
        return found

    async def cluster_of(self, case_key: str) -> str | None:
        """The id of the case's cluster (None while the case is unknown or not yet clustered)."""
        found = await self.redis.hget(keys.case(case_key), "cluster")
        return None if found is None else text_of(found)

    async def clusters_of(self, case_keys: Sequence[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in case_keys:
                pipe.hget(keys.case(key), "cluster")
            found = await pipe.execute()
        return [None if f is None else text_of(f) for f in found]

    async def search(self, query: ClusterQuery, sort: ClusterSort, *, first: int,
                     after: str | None) -> ClusterPage:
        """One page of the dispatch view (see :mod:`casework.clusterindex`).

        Raises:
            ValueError: ``after`` is not a cursor of this view, or ``first`` is negative.
        """
        page = await search_clusters(self.redis, query, sort, first=first, after=after, ttl=self._query_ttl)
        found = await self.get_many(page.ids)
        return replace(page, clusters=tuple(c for c in found if c is not None))

    # -- clustering new cases ------------------------------------------------------------------

    async def assign_pending(self, limit: int = 1000) -> int:
        """Cluster cases stored but not yet clustered (after a crash between ingest and clustering)."""
        pending = sorted(text_of(k) for k in await self.redis.srandmember(keys.CLUSTER_PENDING, limit))
        await self.assign_many([(key, None) for key in pending])
        return len(pending)

    async def assign(self, case_key: str, case: StoredCase | None = None) -> str | None:
        """Put a stored case into a cluster (an open one of the same incident, else a new one); idempotent.

        ``case`` is the stored case when the caller just wrote it (:meth:`CaseStore.ingest_cases`), which
        saves reading it back. Returns the cluster id, or None when the case is not in the store.
        """
        [found] = await self.assign_many([(case_key, case)])
        return found

    async def assign_many(self, items: Sequence[tuple[str, StoredCase | None]]) -> list[str | None]:
        """:meth:`assign` for a page of cases, in their order (a case may join the cluster an earlier one
        of the page started), in a few round trips for the whole page; returns each one's cluster id.

        The page's candidates are read in one command, the decisions made in CPU
        (:func:`casework.clusterbatch.place`), and every cluster touched is written once, in one
        ``MULTI`` with one event per case, under ``WATCH`` of the cases and the clusters joined, one page
        at a time in the whole store (:meth:`_across_replicas`). More than :data:`ASSIGN_PAGE` cases are
        taken in parts of that size.
        """
        if len(items) > ASSIGN_PAGE:
            found: list[str | None] = []
            for start in range(0, len(items), ASSIGN_PAGE):
                found += await self.assign_many(items[start:start + ASSIGN_PAGE])
            return found
        unread = [key for key, case in items if case is None]
        fetched = dict(zip(unread, await self.cases.get_many(unread), strict=True)) if unread else {}
        resolved = [given or fetched.get(key) for key, given in items]
        gone = [key for (key, _), case in zip(items, resolved, strict=True) if case is None]
        if gone:
            await self.redis.srem(keys.CLUSTER_PENDING, *gone)
        cases: dict[str, StoredCase] = {}
        for case in resolved:
            if case is not None:
                cases.setdefault(case.key, case)  # a case given twice: its first place in the page
        batch = [(case, signature(case, self.reference, self.cases.appellant_hashes(case)))
                 for case in cases.values()]
        placed = await self._assign_batch(batch) if batch else {}
        return [None if case is None else placed[case.key] for case in resolved]

    async def _assign_batch(self, batch: list[tuple[StoredCase, Signature]]) -> dict[str, str]:
        async with self._clustering, self._across_replicas(), self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    return await self._assign_once(pipe, batch)
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"clustering {batch[0][0].key!r}… kept conflicting; gave up")

    @contextlib.asynccontextmanager
    async def _across_replicas(self) -> AsyncIterator[None]:
        """Hold the store-wide clustering lock (redis-py's ``Lock``) while a page is clustered.

        Replicas take different channels, but their pages meet at the same places: without it, some
        four in ten of two replicas' attempts to cluster a page of a backfill found a block they watched
        written by the other and were thrown away, a quarter of their CPU (bench/dedup.py's split fill).
        The ``WATCH`` stays the guarantee: a replica that waited :data:`LOCK_SECONDS` goes on without the
        lock, and a page that outlives the lock still fails on a conflict.
        """
        lock = self.redis.lock(keys.CLUSTERING_LOCK, timeout=LOCK_SECONDS, sleep=LOCK_POLL,
                               blocking_timeout=LOCK_SECONDS, thread_local=False)
        held = await lock.acquire()
        if not held:
            log.warning("clustering without the lock: another replica held it for %ss", LOCK_SECONDS)
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(LockError):  # it ran out: the WATCH guarded the write
                    await lock.release()

    async def _assign_once(self, pipe: Any, batch: list[tuple[StoredCase, Signature]]) -> dict[str, str]:
        await pipe.watch(*(keys.case(case.key) for case, _ in batch), *_named_blocks(batch))
        links, filed, stored = await self._retrieve(batch)
        done = {case.key: link for (case, _), link in zip(batch, links, strict=True) if link is not None}
        unlinked = [n for n, link in enumerate(links) if link is None]
        items = [batch[n] for n in unlinked]
        found = [[_filed(answer) for answer in filed[n]] for n in unlinked]
        records: dict[str, Cluster | None] = {}
        loaded: dict[str, Loaded] = {}
        placed = place(items, found, stored, records, self.reference, self.thresholds)
        while placed.unread:
            wanted = sorted(placed.unread)
            await pipe.watch(*(keys.cluster(cluster_id) for cluster_id in wanted))
            # read on another connection: the WATCH above already guards the EXEC, and one round trip
            # reads them all where the watching connection would take one per command
            async with self.redis.pipeline(transaction=False) as reader:
                for cluster_id, read in zip(wanted, await read_many(reader, wanted), strict=True):
                    records[cluster_id] = None if read is None else read[0]
                    if read is not None:
                        loaded[cluster_id] = read
            wrong = placed.first_wrong(records)
            if wrong is None:
                break
            placed = place(items, found, stored, records, self.reference, self.thresholds, kept=placed,
                           keep=wrong)
        if self.record_examined:
            self.examined += placed.examined
        first = int(await self.redis.incrby(keys.CLUSTER_SEQUENCE, placed.new_count)) - placed.new_count \
            if placed.new_count else 0
        writes, events, assigned = self._apply(placed, loaded, first)
        pipe.multi()
        self.write_many_in(pipe, writes)
        for kind, payload in events:
            self.events.append_in(pipe, kind, payload)
        if done:
            pipe.srem(keys.CLUSTER_PENDING, *done)
        await pipe.execute()
        return {**done, **assigned}

    def _apply(self, placed: Placements, loaded: Mapping[str, Loaded],
               first: int) -> tuple[list[ClusterWrite], list[tuple[str, dict[str, str]]], dict[str, str]]:
        """The records the placements make, one write per cluster touched, and one event per case."""
        real: dict[str, str] = {}      # placeholder -> the new cluster's id
        touched: dict[str, TouchedCluster] = {}
        events: list[tuple[str, dict[str, str]]] = []
        assigned: dict[str, str] = {}
        for p in placed.placements:
            if p.decision is None:
                real[p.cluster_id] = cluster_id = f"c{first + len(real) + 1}"
                recurrence = real.get(p.recurrence_of or "", p.recurrence_of)
                state = TouchedCluster(new_cluster(cluster_id, p.case, recurrence), [], set())
                touched[cluster_id] = state
                state.add(p)
                events.append((CLUSTER_CREATED, cluster_event(state.cluster, state.sigs, first=p.case.key,
                                                              recurrence_of=recurrence)))
            else:
                cluster_id = real.get(p.cluster_id, p.cluster_id)
                state = touched.get(cluster_id) or TouchedCluster(*loaded[cluster_id])
                touched[cluster_id] = state
                state.add(p)
                events.append((CLUSTER_UPDATED, cluster_event(
                    state.cluster, state.sigs, first=p.case.key, only_first=True, change="case.clustered",
                    score=f"{p.decision.score:.3f}", case_count=str(state.cluster.case_count))))
            assigned[p.case.key] = cluster_id
        return [state.write() for state in touched.values()], events, assigned

    async def _retrieve(self, batch: Sequence[tuple[StoredCase, Signature]]
                        ) -> tuple[list[str | None], list[list[bytes]], dict[str, Any]]:
        """Each case's cluster (None while unclustered); per blocking key, the clusters filed there
        nearest in time on either side with their scores, as Redis wrote them (:func:`_filed` reads
        them); and those clusters' stored signatures — in one command for the page (the caller's WATCH
        of the cases guards it)."""
        blocks_of = [[keys.dedup_block(block) for block in sig.blocks()] for _, sig in batch]
        names = list(dict.fromkeys(name for blocks in blocks_of for name in blocks))
        position = {name: n for n, name in enumerate(names, start=1)}
        args: list[Any] = [BLOCK_FETCH]
        for (case, sig), blocks in zip(batch, blocks_of, strict=True):
            args += [case.key, repr(sig.at), repr(oldest_candidate(sig.at, self.thresholds)), len(blocks),
                     *(position[name] for name in blocks)]
        answer = await self.redis.eval(_RETRIEVE, len(names) + 2, *names, keys.CLUSTER_OF,
                                       keys.CLUSTER_SIGNATURES, *args)
        links, *per_case, flat = answer
        stored = {text_of(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        return [None if link is None else text_of(link) for link in links], per_case, stored

    # -- writing -------------------------------------------------------------------------------

    def write_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], *, old_ix: set[str],
                 cases: Sequence[StoredCase], sig_of_new: Signature | None = None,
                 new_ix: set[str] | None = None, residents_left: frozenset[str] = frozenset()) -> None:
        """Queue the cluster's record, the diff of its index memberships and its members' links (``cases``
        join it; ``residents_left`` are resident index sets it leaves)."""
        new_sigs = (sig_of_new,) if sig_of_new else ()
        last = cluster.last_received_at.timestamp()
        self.write_many_in(pipe, [ClusterWrite(cluster, sigs, old_ix, tuple(cases), new_sigs, new_ix,
                                               {block: last for sig in new_sigs for block in sig.blocks()},
                                               residents_left)])

    def write_many_in(self, pipe: Any, writes: Sequence[ClusterWrite]) -> None:
        """:meth:`write_in` for several clusters: the same writes, in a few commands for all
        (:func:`casework.clusterrecord.queue_writes`)."""
        queue_writes(pipe, writes, self.reference, self.cases.appellant_hashes)

    async def load_full(self, pipe: Any, cluster_id: str) -> tuple[Cluster, list[dict[str, Any]], set[str]]:
        """The cluster, its members' signatures and its index keys, read on ``pipe`` (a watching
        pipeline, or a client). Raises KeyError when unknown."""
        doc, ix = await pipe.hmget(keys.cluster(cluster_id), "doc", "ix")
        if doc is None:
            raise KeyError(cluster_id)
        sigs = await pipe.hget(keys.CLUSTER_SIGNATURES, cluster_id)
        return Cluster.load(text_of(doc)), load_sigs(sigs), load_ix(ix)

    # -- the lifecycle (issue 5's dispatch calls these) ----------------------------------------

    async def set_status(self, cluster_id: str, status: UnifiedStatus, *, by: str = "system",
                         at: datetime | None = None) -> Cluster:
        """Move the cluster to ``status`` (one ``cluster.status`` event). Raises KeyError when unknown."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(keys.cluster(cluster_id))
                    cluster, sigs, ix = await self.load_full(pipe, cluster_id)
                    members = await self.members(cluster, pipe)
                    pipe.multi()
                    changed = self.set_status_in(pipe, cluster, sigs, ix, status, members=members, by=by,
                                                 at=at)
                    await pipe.execute()
                    return changed
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"cluster {cluster_id!r} kept changing; gave up")

    def set_status_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], ix: set[str],
                      status: UnifiedStatus, *, members: Sequence[str], by: str = "system",
                      at: datetime | None = None) -> Cluster:
        """Queue a status change and its event on ``pipe`` (after ``pipe.multi()``); returns the record.
        ``members`` are the cluster's case keys (:meth:`members`), which the event concerns."""
        when = at or utc_now()
        closed_at = when if status in CLOSED_STATUSES else None
        changed = replace(cluster, status=status, closed_at=closed_at)
        self.write_in(pipe, changed, sigs, old_ix=ix, cases=(), new_ix=ix)
        self.events.append_in(pipe, CLUSTER_UPDATED, cluster_event(
            changed, sigs, members=members, actor=by, at=when, change="status", status=status.value,
            previous=cluster.status.value))
        return changed

    async def set_dispatch(self, cluster_id: str, *, department_id: str | None, deadline: datetime | None,
                           overdue: bool = False, by: str = "system") -> Cluster:
        """Record the responsible department, the deadline and the overdue flag (one ``cluster.dispatch``
        event); the dispatch view filters on department and overdue and sorts on the deadline."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(keys.cluster(cluster_id))
                    cluster, sigs, ix = await self.load_full(pipe, cluster_id)
                    members = await self.members(cluster, pipe)
                    pipe.multi()
                    changed = self.set_dispatch_in(pipe, cluster, sigs, ix, members=members,
                                                   department_id=department_id, deadline=deadline,
                                                   overdue=overdue, by=by)
                    await pipe.execute()
                    return changed
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"cluster {cluster_id!r} kept changing; gave up")

    def set_dispatch_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], ix: set[str], *,
                        members: Sequence[str], department_id: str | None, deadline: datetime | None,
                        overdue: bool, by: str = "system") -> Cluster:
        changed = replace(cluster, department_id=department_id, deadline=deadline, overdue=overdue)
        new_ix = {k for k in ix if not k.startswith(keys.cluster_index("dep", ""))}
        if department_id:
            new_ix.add(keys.cluster_index("dep", department_id))
        self.write_in(pipe, changed, sigs, old_ix=ix, cases=(), new_ix=new_ix)
        if overdue:
            pipe.sadd(keys.CLUSTER_OVERDUE, cluster.id)
        else:
            pipe.srem(keys.CLUSTER_OVERDUE, cluster.id)
        self.events.append_in(pipe, CLUSTER_UPDATED, cluster_event(
            changed, sigs, members=members, actor=by, change="dispatch",
            deadline=deadline.isoformat() if deadline else "", overdue="1" if overdue else "0"))
        return changed

    # -- dispatchers' corrections (never undone automatically) ---------------------------------

    async def merge(self, cluster_ids: Sequence[str], *, by: str) -> Cluster:
        """Merge clusters into the oldest of them (see :func:`casework.corrections.merge`)."""
        from casework.corrections import merge

        return await merge(self, cluster_ids, by=by)

    async def split(self, case_key: str, *, by: str) -> Cluster:
        """Take a case out of its cluster into a new one (see :func:`casework.corrections.split`)."""
        from casework.corrections import split

        return await split(self, case_key, by=by)


def _named_blocks(batch: Sequence[tuple[StoredCase, Signature]]) -> list[str]:
    """The page's blocking keys but its communities: named places, addresses, residents.

    Watched with the cases: another process (a replica taking other channels) that files a cluster
    under one of them while the page is decided — the same incident at the same place, reported
    through its channel — makes the page be decided again, and it joins that cluster instead of
    starting a second one. A community's key is written by every report there, so watching it would
    make pages conflict all the time.
    """
    return sorted({keys.dedup_block(block) for _, sig in batch for block in sig.blocks()
                   if not block.startswith("rg:")})


_RETRIEVE = """
-- KEYS: the blocking keys' sorted sets, then case -> cluster, then the signatures hash.
-- ARGV: how many clusters a side; then per case: its key, its time, the oldest last report that can
-- still take it, its block count, and the indexes in KEYS of its blocks.
local n = tonumber(ARGV[1])
local links, per_case, seen, ids = {}, {}, {}, {}
local a = 2
while a <= #ARGV do
  local case, at, oldest, count = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  links[#links + 1] = redis.call('HGET', KEYS[#KEYS - 1], case)
  local mine = {}
  for j = 1, count do
    local block = KEYS[tonumber(ARGV[a + 3 + j])]
    local near = redis.call('ZREVRANGEBYSCORE', block, at, oldest, 'WITHSCORES', 'LIMIT', 0, n)
    local after = redis.call('ZRANGEBYSCORE', block, '(' .. at, '+inf', 'WITHSCORES', 'LIMIT', 0, n)
    for i = 1, #after do near[#near + 1] = after[i] end
    for i = 1, #near, 2 do
      if not seen[near[i]] then
        seen[near[i]] = true
        ids[#ids + 1] = near[i]
      end
    end
    mine[j] = table.concat(near, ' ')
  end
  per_case[#per_case + 1] = mine
  a = a + 4 + count
end
local flat = {}
if #ids > 0 then
  local sigs = redis.call('HMGET', KEYS[#KEYS], unpack(ids))
  for i = 1, #ids do
    flat[2 * i - 1] = ids[i]
    flat[2 * i] = sigs[i]
  end
end
local answer = {links}
for i = 1, #per_case do answer[#answer + 1] = per_case[i] end
answer[#answer + 1] = flat
return answer
"""
"""Retrieval for a page: per case its cluster (if clustered already) and, per blocking key, the clusters
nearest in time on either side with their scores — before the case, only those whose last report
there is recent enough to take it (:func:`~casework.dedup.oldest_candidate`) — as one string,
``id score id score …``, that :func:`_filed` splits (a reply element per cluster and score cost more
to read); then every cluster's signatures once — the same reads as an HGET, one
ZREVRANGEBYSCORE/ZRANGEBYSCORE pair per key and an HMGET per case, in one command (every key of the
index slot)."""


def _filed(raw: Any) -> Filed:
    """One blocking key's nearest clusters as :data:`_RETRIEVE` answers them: ``id score id score …``."""
    parts = text_of(raw).split()
    return list(zip(parts[::2], map(float, parts[1::2]), strict=True))

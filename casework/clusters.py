"""The cluster store: 民声云 dispatch units — every case belongs to exactly one cluster.

A cluster is what gets dispatched. It is one hash (``keys.cluster``) holding its record as JSON
(``doc``) and the index keys it is filed under (``ix``); the dedup signatures of its latest members, all
the matcher reads of it, sit in one hash of the index slot (``keys.CLUSTER_SIGNATURES``), so that
retrieving the candidates of a new case and reading their signatures is one command. The case hash
records its cluster (field ``cluster``), and so does ``keys.CLUSTER_OF`` (for the dispatch view's text
filter). Every change — a case clustered, a cluster created, merged, split, its status or dispatch
facts set — is one ``MULTI`` that moves exactly the index memberships that differ and appends exactly
one event to the event log.

Public API (issue 5, dispatch, builds on it):

* :meth:`ClusterStore.assign` / :meth:`assign_pending` — intake's hook: cluster a newly stored case;
* :meth:`ClusterStore.get`, :meth:`get_many`, :meth:`cluster_of`, :meth:`search` (the dispatch view);
* :meth:`ClusterStore.merge`, :meth:`split` — dispatchers' corrections (never undone automatically);
* :meth:`ClusterStore.set_status` — the lifecycle (its own event ``cluster.status``), and
  :meth:`ClusterStore.set_dispatch` — department, deadline and overdue flag, which the dispatch
  view filters and sorts on; both also as ``*_in(pipe, …)`` to join a caller's own ``MULTI``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import WatchError

from casework import keys
from casework.clusterindex import ClusterPage, ClusterQuery, ClusterSort, memberships, search_clusters
from casework.dedup import BLOCK_FETCH, Decision, Signature, Thresholds, match, signature
from casework.events import (
    CLUSTER_CREATED,
    CLUSTER_UPDATED,
    EventLog,
    event_fields,
)
from casework.indexsets import move_in
from casework.model import StoredCase
from casework.reference import Reference
from casework.store import CaseStore
from connectors import UnifiedStatus, utc_now

__all__ = ["CLOSED_STATUSES", "Cluster", "ClusterConflict", "ClusterPage", "ClusterQuery",
           "ClusterSort", "ClusterStore", "MergeReason", "cluster_event", "new_cluster", "with_case",
           "with_risk"]

# The event types are casework.events' vocabulary: cluster.created (a new cluster with its first case),
# cluster.updated (``change`` = case.clustered | status | dispatch), cluster.merged, cluster.split.

CLOSED_STATUSES = frozenset({UnifiedStatus.CLOSED})
"""A cluster in one of these no longer attracts reports: a later one starts a recurrence."""
MAX_SIGNATURES = 8
MAX_REASONS = 50
MAX_RETRIES = 50


class ClusterConflict(Exception):
    """Raised when a correction contradicts the clusters' state (e.g. splitting a cluster's only case)."""


@dataclass(frozen=True, slots=True)
class MergeReason:
    """Why a case is in its cluster: the matched case, the score and its signals, who decided."""

    case_key: str
    matched_key: str | None
    score: float
    signals: dict[str, float]
    by: str                      # "auto", or "manual:<username>"
    at: datetime

    def dump(self) -> dict[str, Any]:
        return {"case": self.case_key, "matched": self.matched_key, "score": round(self.score, 3),
                "signals": self.signals, "by": self.by, "at": self.at.isoformat()}

    @classmethod
    def load(cls, data: dict[str, Any]) -> MergeReason:
        return cls(data["case"], data.get("matched"), float(data["score"]), dict(data.get("signals") or {}),
                   data["by"], _time(data["at"]))


@dataclass(frozen=True, slots=True)
class Cluster:
    """One dispatch unit (民声云): one real-world incident, one or more cases from one or more channels."""

    id: str
    title: str
    category_id: str | None
    region_id: str | None
    status: UnifiedStatus
    case_keys: tuple[str, ...]             # oldest report first
    channels: tuple[str, ...]
    first_received_at: datetime
    last_received_at: datetime
    risk: float
    merge_reasons: tuple[MergeReason, ...] = ()
    recurrence_of: str | None = None       # the closed cluster this one recurs
    manual: bool = False                   # a dispatcher merged or split it: never re-clustered automatically
    created_at: datetime = field(default_factory=utc_now)
    closed_at: datetime | None = None
    department_id: str | None = None       # set by dispatch
    deadline: datetime | None = None       # set by dispatch
    overdue: bool = False                  # set by dispatch
    head_count: int = 1

    @property
    def case_count(self) -> int:
        return len(self.case_keys)

    def open_at(self, at: datetime) -> bool:
        """Whether a report received at ``at`` may still join (not closed, or closed after it)."""
        return self.status not in CLOSED_STATUSES or self.closed_at is None or at <= self.closed_at

    def dump(self) -> str:
        return json.dumps({
            "id": self.id, "title": self.title, "category_id": self.category_id, "region_id": self.region_id,
            "status": self.status.value, "cases": list(self.case_keys), "channels": list(self.channels),
            "first": self.first_received_at.isoformat(), "last": self.last_received_at.isoformat(),
            "risk": self.risk, "reasons": [r.dump() for r in self.merge_reasons[-MAX_REASONS:]],
            "recurrence_of": self.recurrence_of, "manual": self.manual,
            "created": self.created_at.isoformat(), "closed": _iso(self.closed_at),
            "department_id": self.department_id, "deadline": _iso(self.deadline),
            "overdue": self.overdue, "heads": self.head_count}, ensure_ascii=False)

    @classmethod
    def load(cls, raw: str) -> Cluster:
        d = json.loads(raw)
        return cls(id=d["id"], title=d["title"], category_id=d["category_id"], region_id=d["region_id"],
                   status=UnifiedStatus(d["status"]), case_keys=tuple(d["cases"]),
                   channels=tuple(d["channels"]), first_received_at=_time(d["first"]),
                   last_received_at=_time(d["last"]), risk=float(d["risk"]),
                   merge_reasons=tuple(MergeReason.load(r) for r in d.get("reasons", ())),
                   recurrence_of=d.get("recurrence_of"), manual=bool(d.get("manual")),
                   created_at=_time(d["created"]), closed_at=_maybe_time(d.get("closed")),
                   department_id=d.get("department_id"), deadline=_maybe_time(d.get("deadline")),
                   overdue=bool(d.get("overdue")), head_count=int(d.get("heads", 1)))


@dataclass(frozen=True, slots=True)
class _Candidate:
    cluster_id: str
    decision: Decision
    matched_key: str


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
        return [None if doc is None else Cluster.load(_text(doc)) for doc in docs]

    async def cluster_of(self, case_key: str) -> str | None:
        """The id of the case's cluster (None while the case is unknown or not yet clustered)."""
        found = await self.redis.hget(keys.case(case_key), "cluster")
        return None if found is None else _text(found)

    async def clusters_of(self, case_keys: Sequence[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in case_keys:
                pipe.hget(keys.case(key), "cluster")
            found = await pipe.execute()
        return [None if f is None else _text(f) for f in found]

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
        pending = [_text(k) for k in await self.redis.srandmember(keys.CLUSTER_PENDING, limit)]
        for key in sorted(pending):
            await self.assign(key)
        return len(pending)

    async def assign(self, case_key: str, case: StoredCase | None = None) -> str | None:
        """Put a stored case into a cluster (an open one of the same incident, else a new one); idempotent.

        ``case`` is the stored case when the caller just wrote it (:meth:`CaseStore.ingest_cases`), which
        saves reading it back. Returns the cluster id, or None when the case is not in the store.
        """
        if case is None:
            case = await self.cases.get(case_key)
        if case is None:
            await self.redis.srem(keys.CLUSTER_PENDING, case_key)
            return None
        sig = signature(case, self.reference, self.cases.appellant_hashes(case))
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    return await self._assign_once(pipe, case, sig)
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"clustering {case_key!r} kept conflicting; gave up")

    async def _assign_once(self, pipe: Any, case: StoredCase, sig: Signature) -> str:
        await pipe.watch(keys.case(case.key))
        current, found = await self._link_and_candidates(case.key, sig)
        if current is not None:
            pipe.multi()
            pipe.srem(keys.CLUSTER_PENDING, case.key)
            await pipe.execute()
            return _text(current)
        best = self._best_candidate(sig, found)
        loaded = None
        if best is not None:
            await pipe.watch(keys.cluster(best.cluster_id))
            # read on another connection: the WATCH above already guards the EXEC, and one round trip
            # reads both keys where the watching connection would take one per command
            async with self.redis.pipeline(transaction=False) as reader:
                loaded = await _read(reader, best.cluster_id)
        if loaded is not None and best is not None and loaded[0].open_at(case.received_at):
            target, old_sigs, old_ix = loaded
            reason = MergeReason(case.key, best.matched_key, best.decision.score,
                                 best.decision.signals.as_dict(), "auto", utc_now())
            joined = with_case(target, case, reason)
            sigs = _add_sig(old_sigs, sig)
            pipe.multi()
            self.write_in(pipe, joined, sigs, old_ix=old_ix, cases=[case], sig_of_new=sig)
            self.events.append_in(pipe, CLUSTER_UPDATED, cluster_event(
                joined, sigs, first=case.key, change="case.clustered", score=f"{best.decision.score:.3f}"))
            await pipe.execute()
            return joined.id
        cluster_id = f"c{int(await self.redis.incr(keys.CLUSTER_SEQUENCE))}"
        recurrence = loaded[0].id if loaded is not None else None  # the closed cluster it matched
        created = new_cluster(cluster_id, case, recurrence)
        sigs = [sig.dump()]
        pipe.multi()
        self.write_in(pipe, created, sigs, old_ix=set(), cases=[case], sig_of_new=sig)
        self.events.append_in(pipe, CLUSTER_CREATED, cluster_event(created, sigs, first=case.key,
                                                                   recurrence_of=recurrence))
        await pipe.execute()
        return cluster_id

    async def _link_and_candidates(self, case_key: str, sig: Signature) -> tuple[Any, list[tuple[str, Any]]]:
        """The case's cluster (None while unclustered) and the clusters filed under its blocking keys, the
        nearest in time on either side, with their stored signatures (None for a cluster merged away
        since), in one round trip on another connection (the caller's WATCH of the case guards both)."""
        blocks = [keys.dedup_block(block) for block in sig.blocks()]
        async with self.redis.pipeline(transaction=False) as reader:
            reader.hget(keys.case(case_key), "cluster")
            if blocks:
                reader.eval(_RETRIEVE, len(blocks) + 1, *blocks, keys.CLUSTER_SIGNATURES, repr(sig.at),
                            BLOCK_FETCH)
            current, *answers = await reader.execute()
        answer = answers[0] if answers else []
        return current, [(_text(answer[i]), answer[i + 1]) for i in range(0, len(answer), 2)]

    def _best_candidate(self, sig: Signature, found: list[tuple[str, Any]]) -> _Candidate | None:
        """The best-scoring cluster among the few the blocking keys retrieved (never a scan)."""
        if self.record_examined:
            self.examined.append(len(found))
        best: _Candidate | None = None
        for cluster_id, raw in found:
            for other in _signatures(raw):
                decision = match(sig, other, self.reference, self.thresholds)
                if decision is not None and (best is None or decision.score > best.decision.score):
                    best = _Candidate(cluster_id, decision, other.key)
        return best

    # -- writing -------------------------------------------------------------------------------

    def write_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], *, old_ix: set[str],
               cases: Iterable[StoredCase], sig_of_new: Signature | None = None,
               new_ix: set[str] | None = None) -> None:
        """Queue the cluster's record, the diff of its index memberships and its members' links."""
        ix = new_ix if new_ix is not None else old_ix | memberships(
            cluster, cases, self.reference, self._appellants(sig_of_new))
        ix = {k for k in ix if not k.startswith(keys.cluster_index("st", ""))}
        ix.add(keys.cluster_index("st", cluster.status.value))
        scores = _orders(cluster)
        if sig_of_new is not None:
            last = cluster.last_received_at.timestamp()
            scores.update((keys.dedup_block(block), last) for block in sig_of_new.blocks())
        move_in(pipe, cluster.id, add=ix - old_ix, remove=old_ix - ix, scores=scores)
        pipe.hset(keys.cluster(cluster.id), mapping={"doc": cluster.dump(), "ix": json.dumps(sorted(ix))})
        pipe.hset(keys.CLUSTER_SIGNATURES, cluster.id, json.dumps(sigs, ensure_ascii=False))
        linked = [case.key for case in cases]
        for key in linked:
            pipe.hset(keys.case(key), "cluster", cluster.id)
        if linked:  # the same link in the index slot: the dispatch view's text filter maps cases by it
            pipe.hset(keys.CLUSTER_OF, mapping=dict.fromkeys(linked, cluster.id))
            pipe.srem(keys.CLUSTER_PENDING, *linked)
        pipe.incr(keys.CLUSTER_GENERATION)

    def _appellants(self, sig_of_new: Signature | None) -> Callable[[StoredCase], list[str]]:
        """:meth:`CaseStore.appellant_hashes`, but the new case's are read from its signature (its ``who``):
        they were made for it just before, and each costs two keyed hashes (HMAC-SHA256)."""
        def appellants(case: StoredCase) -> list[str]:
            if sig_of_new is not None and case.key == sig_of_new.key:
                return list(sig_of_new.who)
            return self.cases.appellant_hashes(case)
        return appellants

    async def load_full(self, pipe: Any, cluster_id: str) -> tuple[Cluster, list[dict[str, Any]], set[str]]:
        """The cluster, its members' signatures and its index keys, read on ``pipe`` (a watching
        pipeline, or a client). Raises KeyError when unknown."""
        doc, ix = await pipe.hmget(keys.cluster(cluster_id), "doc", "ix")
        if doc is None:
            raise KeyError(cluster_id)
        sigs = await pipe.hget(keys.CLUSTER_SIGNATURES, cluster_id)
        return Cluster.load(_text(doc)), _load_sigs(sigs), _load_ix(ix)

    # -- the lifecycle (issue 5's dispatch calls these) ----------------------------------------

    async def set_status(self, cluster_id: str, status: UnifiedStatus, *, by: str = "system",
                         at: datetime | None = None) -> Cluster:
        """Move the cluster to ``status`` (one ``cluster.status`` event). Raises KeyError when unknown."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(keys.cluster(cluster_id))
                    cluster, sigs, ix = await self.load_full(pipe, cluster_id)
                    pipe.multi()
                    changed = self.set_status_in(pipe, cluster, sigs, ix, status, by=by, at=at)
                    await pipe.execute()
                    return changed
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"cluster {cluster_id!r} kept changing; gave up")

    def set_status_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], ix: set[str],
                      status: UnifiedStatus, *, by: str = "system", at: datetime | None = None) -> Cluster:
        """Queue a status change and its event on ``pipe`` (after ``pipe.multi()``); returns the record."""
        when = at or utc_now()
        closed_at = when if status in CLOSED_STATUSES else None
        changed = replace(cluster, status=status, closed_at=closed_at)
        self.write_in(pipe, changed, sigs, old_ix=ix, cases=(), new_ix=ix)
        self.events.append_in(pipe, CLUSTER_UPDATED, cluster_event(
            changed, sigs, actor=by, at=when, change="status", status=status.value,
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
                    pipe.multi()
                    changed = self.set_dispatch_in(pipe, cluster, sigs, ix, department_id=department_id,
                                                   deadline=deadline, overdue=overdue, by=by)
                    await pipe.execute()
                    return changed
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"cluster {cluster_id!r} kept changing; gave up")

    def set_dispatch_in(self, pipe: Any, cluster: Cluster, sigs: list[dict[str, Any]], ix: set[str], *,
                        department_id: str | None, deadline: datetime | None, overdue: bool,
                        by: str = "system") -> Cluster:
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
            changed, sigs, actor=by, change="dispatch", deadline=_iso(deadline) or "",
            overdue="1" if overdue else "0"))
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


def cluster_event(cluster: Cluster, sigs: Sequence[dict[str, Any]], *, first: str | None = None,
                  actor: str | None = None, at: datetime | None = None,
                  **detail: str | None) -> dict[str, str]:
    """The event payload of a change of ``cluster`` (the common fields of :func:`event_fields`)."""
    fields = event_fields(cases=[first or "", *cluster.case_keys], cluster=cluster.id,
                          departments=[cluster.department_id or ""], regions=[cluster.region_id],
                          channels=cluster.channels, parties=[w for s in sigs for w in s.get("who", ())],
                          actor=None if actor in (None, "system") else actor, at=at)
    fields.update({name: value for name, value in detail.items() if value is not None})
    return fields


def new_cluster(cluster_id: str, case: StoredCase, recurrence_of: str | None) -> Cluster:
    terminal = case.status in CLOSED_STATUSES
    reason = MergeReason(case.key, None, 1.0, {}, "auto", utc_now())
    return Cluster(id=cluster_id, title=case.title, category_id=case.category_id, region_id=case.region_id,
                   status=case.status if terminal else UnifiedStatus.SUBMITTED, case_keys=(case.key,),
                   channels=(case.channel,), first_received_at=case.received_at,
                   last_received_at=case.received_at, risk=0.0, merge_reasons=(reason,),
                   recurrence_of=recurrence_of, closed_at=case.updated_at if terminal else None,
                   head_count=_heads(case))


def with_case(cluster: Cluster, case: StoredCase, reason: MergeReason | None) -> Cluster:
    keys_ = tuple(sorted({*cluster.case_keys, case.key}))
    channels = tuple(sorted({*cluster.channels, case.channel}))
    joined = replace(cluster, case_keys=keys_, channels=channels,
                     first_received_at=min(cluster.first_received_at, case.received_at),
                     last_received_at=max(cluster.last_received_at, case.received_at),
                     region_id=cluster.region_id or case.region_id,
                     category_id=cluster.category_id or case.category_id,
                     merge_reasons=cluster.merge_reasons + ((reason,) if reason else ()),
                     head_count=max(cluster.head_count, _heads(case)))
    return with_risk(joined)


def with_risk(cluster: Cluster) -> Cluster:
    """Risk in [0, 1]: more reports, more channels, a petition, a group matter weigh more (explainable)."""
    risk = (0.12 * min(cluster.case_count - 1, 4) + 0.15 * min(len(cluster.channels) - 1, 2)
            + (0.2 if "petition" in cluster.channels else 0.0) + (0.2 if cluster.head_count > 1 else 0.0))
    return replace(cluster, risk=round(min(risk, 1.0), 3))


def _heads(case: StoredCase) -> int:
    value = case.extra.get("head_count")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1


def _add_sig(sigs: list[dict[str, Any]], sig: Signature) -> list[dict[str, Any]]:
    """Keep the first report's signature and the latest ones (bounded: a big cluster stays cheap)."""
    merged = [*sigs, sig.dump()]
    if len(merged) <= MAX_SIGNATURES:
        return merged
    return [merged[0], *merged[-(MAX_SIGNATURES - 1):]]


def _orders(cluster: Cluster) -> dict[str, float]:
    """The cluster's score in each sort order's sorted set."""
    # soonest deadline first when read newest-first: the negated time; none sorts last
    due = -cluster.deadline.timestamp() if cluster.deadline else float("-inf")
    return {keys.cluster_order("last"): cluster.last_received_at.timestamp(),
            keys.cluster_order("count"): cluster.case_count, keys.cluster_order("risk"): cluster.risk,
            keys.cluster_order("deadline"): due}


async def _read(reader: Any, cluster_id: str) -> tuple[Cluster, list[dict[str, Any]], set[str]] | None:
    """:meth:`ClusterStore.load_full` in one round trip on a non-transactional pipeline; None when unknown."""
    reader.hmget(keys.cluster(cluster_id), "doc", "ix")
    reader.hget(keys.CLUSTER_SIGNATURES, cluster_id)
    (doc, ix), sigs = await reader.execute()
    return None if doc is None else (Cluster.load(_text(doc)), _load_sigs(sigs), _load_ix(ix))


_RETRIEVE = """
-- KEYS: the blocking keys' sorted sets, then the signatures hash; ARGV: the case's time, how many a side
local at, n = ARGV[1], tonumber(ARGV[2])
local seen, ids = {}, {}
for i = 1, #KEYS - 1 do
  local before = redis.call('ZREVRANGEBYSCORE', KEYS[i], at, '-inf', 'LIMIT', 0, n)
  local after = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. at, '+inf', 'LIMIT', 0, n)
  for _, side in ipairs({before, after}) do
    for _, id in ipairs(side) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
end
if #ids == 0 then return {} end
local sigs = redis.call('HMGET', KEYS[#KEYS], unpack(ids))
local answer = {}
for i = 1, #ids do
  answer[2 * i - 1] = ids[i]
  answer[2 * i] = sigs[i]
end
return answer
"""
"""Retrieval: the blocking keys' nearest clusters in time, distinct, first seen first, with their
signatures — the same reads as one ZREVRANGEBYSCORE/ZRANGEBYSCORE pair per key and an HMGET, in one
command (every key of the index slot)."""


@functools.lru_cache(maxsize=2048)
def _signatures(raw: bytes | str | None) -> tuple[Signature, ...]:
    """A cluster's stored signatures, parsed; cached by their stored form, since the same recent clusters
    are the candidates of report after report at one place (a changed cluster is a different key)."""
    return tuple(_signature(member) for member in _members(_text(raw))) if raw else ()


_NEXT_MEMBER = '}, {"k": '
"""Between two members of a stored signature list as ``json.dumps`` writes it (``Signature.dump`` puts
``k`` first): a bare quote is never inside a JSON string, so this only ever separates members."""


def _members(text: str) -> list[str]:
    """The JSON text of each member of a stored signature list."""
    body = text.strip()
    if not (body.startswith('[{"k": ') and body.endswith("}]")):  # empty, or not written by _add_sig
        return [json.dumps(member, ensure_ascii=False) for member in _load_sigs(body)]
    parts = body[1:-1].split(_NEXT_MEMBER)
    last = len(parts) - 1
    return [("" if i == 0 else '{"k": ') + part + ("" if i == last else "}") for i, part in enumerate(parts)]


@functools.lru_cache(maxsize=8192)
def _signature(member: str) -> Signature:
    """One member's signature, cached by its text: a growing cluster's list changes with every report,
    but its members' signatures do not, and a big cluster's eight were parsed again for each change."""
    return Signature.load(json.loads(member))


def _load_sigs(raw: Any) -> list[dict[str, Any]]:
    return list(json.loads(_text(raw))) if raw else []


def _load_ix(raw: Any) -> set[str]:
    return set(json.loads(_text(raw))) if raw else set()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe_time(raw: str | None) -> datetime | None:
    return _time(raw) if raw else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

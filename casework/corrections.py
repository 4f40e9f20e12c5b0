"""Dispatchers' corrections of the clustering: merge clusters, split a case out (民声云).

Both mark the clusters they touch ``manual``. Automatic clustering only ever places *new* cases; it
never merges clusters nor moves a case that is already clustered, so a manual decision stands until a
dispatcher changes it again. Each correction is one ``MULTI`` with exactly one event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from redis.exceptions import WatchError

from casework import keys
from casework.clusterindex import memberships, resident_keys
from casework.clusters import (
    MAX_RETRIES,
    Cluster,
    ClusterConflict,
    ClusterStore,
    MergeReason,
    cluster_event,
    first_and_latest,
    new_cluster,
    with_case,
    with_risk,
)
from casework.dedup import Signature, signature
from casework.events import CLUSTER_MERGED, CLUSTER_SPLIT
from casework.indexsets import move_in
from casework.model import StoredCase
from connectors import utc_now

__all__ = ["merge", "split"]

_Loaded = tuple[Cluster, list[dict[str, Any]], set[str]]


async def merge(store: ClusterStore, cluster_ids: Sequence[str], *, by: str) -> Cluster:
    """Merge clusters into the one with the oldest report (one ``cluster.merged`` event).

    Raises:
        KeyError: a cluster does not exist.
        ClusterConflict: fewer than two distinct clusters.
    """
    ids = list(dict.fromkeys(cluster_ids))
    if len(ids) < 2:
        raise ClusterConflict("merging needs at least two different clusters")
    async with store.redis.pipeline(transaction=True) as pipe:
        for _ in range(MAX_RETRIES):
            try:
                await pipe.watch(*(keys.cluster(i) for i in ids))
                loaded = [await store.load_full(pipe, i) for i in ids]
                listed = {cluster.id: await store.members(cluster, pipe) for cluster, _, _ in loaded}
                merged = await _merge_in(store, pipe, loaded, listed, by)
                await pipe.execute()
                return merged
            except WatchError:
                await pipe.reset()
    raise RuntimeError("the clusters kept changing; gave up")


async def _merge_in(store: ClusterStore, pipe: Any, loaded: list[_Loaded], listed: dict[str, list[str]],
                    by: str) -> Cluster:
    loaded.sort(key=lambda item: (item[0].first_received_at, item[0].id))
    (target, sigs, ix), others = loaded[0], loaded[1:]
    members = [key for other, _, _ in others for key in listed[other.id]]
    cases = [c for c in await store.cases.get_many(members) if c is not None]
    cases_of = {c.key: c for c in cases}
    merged = target
    for case in cases:
        merged = with_case(merged, case, MergeReason(case.key, None, 1.0, {}, f"manual:{by}", utc_now()))
    merged = replace(merged, manual=True)
    other_sigs = [s for _, more, _ in others for s in more]
    kept = first_and_latest(sigs + other_sigs)
    pipe.multi()
    store.write_in(pipe, merged, kept, old_ix=ix, cases=cases,
                   new_ix=ix.union(*(other_ix for _, _, other_ix in others)))
    for other, _, other_ix in others:
        residents = resident_keys([cases_of[k] for k in listed[other.id] if k in cases_of],
                                  store.cases.appellant_hashes)
        _drop(pipe, other, other_ix | residents)
    for raw in other_sigs:  # the merged cluster is found wherever its parts were
        for block in Signature.load(raw).blocks():
            pipe.zadd(keys.dedup_block(block), {merged.id: merged.last_received_at.timestamp()})
    store.events.append_in(pipe, CLUSTER_MERGED, cluster_event(
        merged, kept, members=[*listed[target.id], *members], actor=by,
        merged=",".join(o.id for o, _, _ in others)))
    return merged


async def split(store: ClusterStore, case_key: str, *, by: str) -> Cluster:
    """Take a case out of its cluster into a new cluster of its own (one ``cluster.split`` event).

    Raises:
        KeyError: the case is unknown (or not clustered yet).
        ClusterConflict: the case is already alone in its cluster.
    """
    case = await store.cases.get(case_key)
    if case is None:
        raise KeyError(case_key)
    sig = signature(case, store.reference, store.cases.appellant_hashes(case))
    async with store.redis.pipeline(transaction=True) as pipe:
        for _ in range(MAX_RETRIES):
            try:
                await pipe.watch(keys.case(case_key))
                cluster_id = await pipe.hget(keys.case(case_key), "cluster")
                if cluster_id is None:
                    raise KeyError(case_key)
                cluster_id = cluster_id.decode() if isinstance(cluster_id, bytes) else str(cluster_id)
                await pipe.watch(keys.cluster(cluster_id))
                old, sigs, old_ix = await store.load_full(pipe, cluster_id)
                if old.case_count < 2:
                    raise ClusterConflict("the case is already alone in its cluster")
                others = [k for k in await store.members(old, pipe) if k != case.key]
                created = await _split_in(store, pipe, (old, sigs, old_ix), others, case, sig, by)
                await pipe.execute()
                return created
            except WatchError:
                await pipe.reset()
    raise RuntimeError("the cluster kept changing; gave up")


async def _split_in(store: ClusterStore, pipe: Any, loaded: _Loaded, others: list[str], case: StoredCase,
                    sig: Signature, by: str) -> Cluster:
    old, sigs, old_ix = loaded
    rest = [c for c in await store.cases.get_many(others) if c is not None]
    remaining = _rebuilt(old, rest)
    rest_ix = memberships(remaining, rest, store.reference)
    residents_left = resident_keys([case], store.cases.appellant_hashes) - resident_keys(
        rest, store.cases.appellant_hashes)
    rest_ix |= {k for k in old_ix if k.startswith(keys.cluster_index("dep", ""))}
    new_id = f"c{int(await store.redis.incr(keys.CLUSTER_SEQUENCE))}"
    reason = MergeReason(case.key, None, 1.0, {}, f"manual:{by}", utc_now())
    created = replace(new_cluster(new_id, case, None), merge_reasons=(reason,), manual=True,
                      status=old.status, closed_at=old.closed_at)
    pipe.multi()
    store.write_in(pipe, remaining, [s for s in sigs if s.get("k") != case.key], old_ix=old_ix, cases=(),
                   new_ix=rest_ix, residents_left=frozenset(residents_left))
    pipe.zrem(keys.cluster_cases(old.id), case.key)
    store.write_in(pipe, created, [sig.dump()], old_ix=set(), cases=[case], sig_of_new=sig)
    store.events.append_in(pipe, CLUSTER_SPLIT, cluster_event(created, [sig.dump()], first=case.key, actor=by,
                                                              split_from=old.id))
    return created


def _rebuilt(old: Cluster, rest: Sequence[StoredCase]) -> Cluster:
    """``old`` with only the cases of ``rest``: times, channels and risk worked out again."""
    ordered = sorted(rest, key=lambda c: c.received_at)
    kept = {c.key for c in rest}
    heads = [int(v) for c in rest
             if isinstance(v := c.extra.get("head_count"), int) and not isinstance(v, bool)]
    return with_risk(replace(
        old, case_count=len(rest), channels=tuple(sorted({c.channel for c in rest})),
        first_received_at=ordered[0].received_at, last_received_at=ordered[-1].received_at,
        merge_reasons=tuple(r for r in old.merge_reasons if r.case_key in kept), manual=True,
        head_count=max(heads, default=1)))


def _drop(pipe: Any, cluster: Cluster, ix: set[str]) -> None:
    """Remove a merged-away cluster from every index; dedup blocks still naming it are skipped on read."""
    move_in(pipe, cluster.id, add=(), remove=ix)
    for order in ("last", "count", "risk", "deadline"):
        pipe.zrem(keys.cluster_order(order), cluster.id)
    pipe.srem(keys.CLUSTER_OVERDUE, cluster.id)
    pipe.delete(keys.cluster(cluster.id), keys.cluster_cases(cluster.id))
    pipe.hdel(keys.CLUSTER_SIGNATURES, cluster.id)


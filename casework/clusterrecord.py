"""A cluster's stored form, read and written: its record, its members' signatures, its index memberships
and its case list (the layout is :mod:`casework.clusters`').

* :func:`read_many` reads records with their signatures and index keys in one round trip;
* :class:`ClusterWrite` is one cluster's write, and :func:`queue_writes` queues several on a caller's
  ``MULTI`` in a few commands for all: the record, the diff of its index memberships (and the residents
  its new cases bring), its dedup blocks, its stored signatures, the links of its new cases and their
  place in its case list;
* :class:`TouchedCluster` is a cluster as a page of placements leaves it (what
  :meth:`casework.clusters.ClusterStore.assign_many` writes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from casework import keys
from casework.clusterbatch import Placement
from casework.clusterindex import is_resident_key, memberships, resident_keys
from casework.clustermodel import Cluster, MergeReason, add_signature, with_case
from casework.dedup import Signature
from casework.indexsets import Move, move_many
from casework.model import StoredCase
from casework.reference import Reference
from connectors import utc_now

__all__ = ["ClusterWrite", "Loaded", "TouchedCluster", "load_ix", "load_sigs", "queue_writes", "read_many",
           "text_of"]

Loaded = tuple[Cluster, list[dict[str, Any]], set[str]]
"""A cluster as read for a change: its record, its members' stored signatures and its index keys."""


# -- reading -------------------------------------------------------------------------------------

async def read_many(reader: Any, cluster_ids: Sequence[str]) -> list[Loaded | None]:
    """Each cluster's record, signatures and index keys in one round trip on a non-transactional
    pipeline; None for an unknown one."""
    for cluster_id in cluster_ids:
        reader.hmget(keys.cluster(cluster_id), "doc", "ix")
    reader.hmget(keys.CLUSTER_SIGNATURES, *cluster_ids)
    *records, sigs = await reader.execute()
    return [None if doc is None else (Cluster.load(text_of(doc)), load_sigs(raw), load_ix(ix))
            for (doc, ix), raw in zip(records, sigs, strict=True)]


def load_sigs(raw: Any) -> list[dict[str, Any]]:
    """A cluster's stored signatures (as :meth:`Signature.dump` wrote them); [] when none."""
    return list(json.loads(text_of(raw))) if raw else []


def load_ix(raw: Any) -> set[str]:
    """A cluster's recorded index keys; residents' keys, which records written before they were left out
    hold, are dropped (they stay filed, as every newer record's are)."""
    return {k for k in json.loads(text_of(raw)) if not is_resident_key(k)} if raw else set()


def text_of(value: Any) -> str:
    """A Redis reply as text (the store's client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


# -- writing -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClusterWrite:
    """One cluster's write: its record and stored signatures, the index keys it had, and the cases (with
    their signatures) that joined it; ``new_ix`` replaces the memberships when given; ``blocks`` are
    the dedup blocking keys it is (re)filed under, with its score in each (its last report then)."""

    cluster: Cluster
    sigs: list[dict[str, Any]]
    old_ix: set[str]
    cases: Sequence[StoredCase] = ()
    new_sigs: Sequence[Signature] = ()
    new_ix: set[str] | None = None
    blocks: Mapping[str, float] = field(default_factory=dict)
    residents_left: frozenset[str] = frozenset()


def queue_writes(pipe: Any, writes: Sequence[ClusterWrite], reference: Reference,
                 appellant_hashes: Callable[[StoredCase], list[str]]) -> None:
    """Queue ``writes`` on ``pipe`` (after ``pipe.multi()``). ``appellant_hashes`` gives a stored case's
    residents' identity hashes; the new cases' are read from their signatures instead."""
    moves, signatures, linked = [], {}, {}
    for write in writes:
        cluster = write.cluster
        ix = write.new_ix if write.new_ix is not None else write.old_ix | memberships(
            cluster, write.cases, reference)
        ix = {k for k in ix if not k.startswith(keys.cluster_index("st", ""))}
        ix.add(keys.cluster_index("st", cluster.status.value))
        scores = _orders(cluster)
        scores.update((keys.dedup_block(block), score) for block, score in write.blocks.items())
        residents = resident_keys(write.cases, _appellants(write.new_sigs, appellant_hashes))
        moves.append(Move(cluster.id, add=(ix - write.old_ix) | residents,
                          remove=(write.old_ix - ix) | write.residents_left, scores=scores))
        pipe.hset(keys.cluster(cluster.id), mapping={"doc": cluster.dump(), "ix": json.dumps(sorted(ix))})
        _list_cases(pipe, cluster, write.cases)
        signatures[cluster.id] = json.dumps(write.sigs, ensure_ascii=False)
        linked.update(dict.fromkeys((case.key for case in write.cases), cluster.id))
    move_many(pipe, moves)
    if signatures:
        pipe.hset(keys.CLUSTER_SIGNATURES, mapping=signatures)
    for key, cluster_id in linked.items():
        pipe.hset(keys.case(key), "cluster", cluster_id)
    if linked:  # the same link in the index slot: retrieval and the dispatch view's text filter read it
        pipe.hset(keys.CLUSTER_OF, mapping=linked)
        pipe.srem(keys.CLUSTER_PENDING, *linked)
    pipe.incr(keys.CLUSTER_GENERATION)


def _appellants(new_sigs: Sequence[Signature], appellant_hashes: Callable[[StoredCase], list[str]]
                ) -> Callable[[StoredCase], list[str]]:
    """``appellant_hashes``, but the new cases' are read from their signatures (``who``): they were made
    for them just before, and each costs two keyed hashes (HMAC-SHA256)."""
    known = {sig.key: list(sig.who) for sig in new_sigs}

    def appellants(case: StoredCase) -> list[str]:
        found = known.get(case.key)
        return found if found is not None else appellant_hashes(case)
    return appellants


def _orders(cluster: Cluster) -> dict[str, float]:
    """The cluster's score in each sort order's sorted set."""
    # soonest deadline first when read newest-first: the negated time; none sorts last
    due = -cluster.deadline.timestamp() if cluster.deadline else float("-inf")
    return {keys.cluster_order("last"): cluster.last_received_at.timestamp(),
            keys.cluster_order("count"): cluster.case_count, keys.cluster_order("risk"): cluster.risk,
            keys.cluster_order("deadline"): due}


def _list_cases(pipe: Any, cluster: Cluster, joined: Sequence[StoredCase]) -> None:
    """Queue the cases joining ``cluster`` into its case list (and, for a record written before the list
    was its own, the cases the record held)."""
    listed = keys.cluster_cases(cluster.id)
    if cluster.legacy_cases:  # their received times are not at hand: the cluster's first report's
        pipe.zadd(listed, dict.fromkeys(cluster.legacy_cases, cluster.first_received_at.timestamp()), nx=True)
    if joined:
        pipe.zadd(listed, {case.key: case.received_at.timestamp() for case in joined})


@dataclass(slots=True)
class TouchedCluster:
    """A cluster as a page of placements leaves it."""

    cluster: Cluster
    sigs: list[dict[str, Any]]
    old_ix: set[str]
    cases: list[StoredCase] = field(default_factory=list)
    new_sigs: list[Signature] = field(default_factory=list)
    blocks: dict[str, float] = field(default_factory=dict)

    def add(self, placement: Placement) -> None:
        decision = placement.decision
        if decision is not None:  # it joins; a new cluster's record already holds its first case
            reason = MergeReason(placement.case.key, placement.matched_key, decision.score,
                                 decision.signals.as_dict(), "auto", utc_now())
            self.cluster = with_case(self.cluster, placement.case, reason)
        self.sigs = add_signature(self.sigs, placement.sig)
        self.cases.append(placement.case)
        self.new_sigs.append(placement.sig)
        last = self.cluster.last_received_at.timestamp()  # as one-by-one clustering files each case
        self.blocks.update(dict.fromkeys(placement.sig.blocks(), last))

    def write(self) -> ClusterWrite:
        return ClusterWrite(self.cluster, self.sigs, self.old_ix, self.cases, self.new_sigs,
                            blocks=self.blocks)

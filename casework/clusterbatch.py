"""Which cluster each case of a page joins: the 民声云 decisions for many new cases at once.

Intake stores a page of records in one write; clustering them one by one cost some five round trips
and twenty commands a case, and the client's work of packing, sending and parsing those was most of
an ingest. :meth:`casework.clusters.ClusterStore.assign_many` reads the page's candidates in one
command, decides here — in CPU only — and writes every cluster it touched once.

:func:`place` goes through the cases in the page's order, as one-by-one clustering would: under each
of a case's blocking keys it takes the :data:`~casework.dedup.BLOCK_FETCH` clusters nearest in time on
either side among those the store holds there *and* those earlier cases of the page created or joined
there (with the times and signatures as the page left them), so it sees the candidates one-by-one
retrieval would have read. Before the case, both reach back only as far as a cluster can still take it
(:func:`~casework.dedup.oldest_candidate`).

A stored cluster's record (is it still open?) is not needed to decide, only to write: ``place``
assumes an unread cluster open and lists it in :attr:`Placements.unread`; the store reads those and
plans again only when one turned out closed or gone (rare: a closed cluster is seldom the best match
of a new report).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from casework.clustermodel import CLOSED_STATUSES, Cluster, first_and_latest
from casework.dedup import BLOCK_FETCH, Decision, Signature, Thresholds, match, oldest_candidate
from casework.model import StoredCase

if TYPE_CHECKING:
    from casework.reference import Reference

__all__ = ["NEW", "Filed", "Placement", "Placements", "place"]

Filed = Sequence[tuple[str, float]]
"""The clusters filed under one blocking key near a case's time, with their scores (last report)."""

NEW = "+"
"""The prefix of a placeholder for a cluster the page creates (``+0``, ``+1`` …): never a stored id."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one case goes: a stored cluster or a placeholder; ``decision`` None for a new cluster."""

    case: StoredCase
    sig: Signature
    cluster_id: str
    decision: Decision | None = None
    matched_key: str | None = None
    recurrence_of: str | None = None   # a new cluster: the closed one it would have joined

    @property
    def creates(self) -> bool:
        return self.decision is None


@dataclass(slots=True)
class Placements:
    placements: list[Placement] = field(default_factory=list)
    unread: set[str] = field(default_factory=set)   # stored clusters joined, assumed open
    examined: list[int] = field(default_factory=list)  # candidate clusters per case (for the bench)

    @property
    def new_count(self) -> int:
        return sum(1 for p in self.placements if p.creates)

    def first_wrong(self, records: Mapping[str, Cluster | None]) -> int | None:
        """The first placement that joined a stored cluster assumed open which is in fact closed to its
        case, or gone; None when every assumption held."""
        for n, p in enumerate(self.placements):
            if p.creates or p.cluster_id.startswith(NEW):
                continue
            record = records.get(p.cluster_id)
            if record is None or not record.open_at(p.case.received_at):
                return n
        return None


@dataclass(slots=True)
class _Page:
    """What the page did so far: the clusters it touched, their signatures and last reports, and the
    blocks they are filed under, with their scores there."""

    members: dict[str, tuple[Signature, ...]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    filed: dict[str, dict[str, float]] = field(default_factory=dict)
    first_case: dict[str, StoredCase] = field(default_factory=dict)   # a placeholder's first case

    def add(self, cluster_id: str, sig: Signature, before: tuple[Signature, ...], last: float) -> None:
        self.members[cluster_id] = tuple(first_and_latest((*before, sig)))  # as the store keeps them
        self.last[cluster_id] = last = max(last, sig.at)
        for block in sig.blocks():  # as the store files it: under the new case's keys, at its last report
            self.filed.setdefault(block, {})[cluster_id] = last

    def nearest(self, sig: Signature, retrieved: Sequence[Filed], oldest: float) -> list[str]:
        """The clusters one-by-one retrieval would read for ``sig`` now: under each of its blocking keys,
        the nearest in time on either side (newest first before it, back to ``oldest``; oldest first
        after it)."""
        found: list[str] = []
        for block, stored in zip(sig.blocks(), retrieved, strict=True):
            if block not in self.filed:
                # the page wrote nothing here: the store's answer is already these, in this order
                # (newest first up to the case's time, then oldest first; ids break ties as Redis does)
                found += [c for c, _ in stored]
                continue
            scores = dict(stored)
            scores.update(self.filed[block])
            before = sorted(((t, c) for c, t in scores.items() if oldest <= t <= sig.at), reverse=True)
            after = sorted((t, c) for c, t in scores.items() if t > sig.at)
            found += [c for _, c in before[:BLOCK_FETCH]] + [c for _, c in after[:BLOCK_FETCH]]
        return list(dict.fromkeys(found))


def place(items: Sequence[tuple[StoredCase, Signature]], candidates: Sequence[Sequence[Filed]],
          stored: Mapping[str, Any], records: Mapping[str, Cluster | None], reference: Reference,
          thresholds: Thresholds, *, kept: Placements | None = None, keep: int = 0) -> Placements:
    """Decide, in order, where each of ``items`` goes.

    Args:
        items: the page's unclustered cases with their signatures, oldest first as they arrived.
        candidates: per case, per blocking key (in :meth:`Signature.blocks` order), the stored clusters
            filed there nearest in time on either side, with their scores.
        stored: those clusters' stored signatures (raw, as the store keeps them).
        records: stored clusters already read (None: gone), to tell whether they are still open.
        kept, keep: an earlier plan of the same page whose first ``keep`` placements stand (they come
            before its first wrong assumption); only the cases after them are decided again.
    """
    page = _Page()
    result = Placements()
    for n, ((case, sig), retrieved) in enumerate(zip(items, candidates, strict=True)):
        if kept is not None and n < keep:
            placement = kept.placements[n]
            result.examined.append(kept.examined[n])
        else:
            ids = page.nearest(sig, retrieved, oldest_candidate(sig.at, thresholds))
            result.examined.append(len(ids))
            best = _best(sig, ids, page, stored, reference, thresholds)
            placement = _placement(case, sig, best, page, records, result)
        if placement.creates:
            page.first_case[placement.cluster_id] = case
            page.add(placement.cluster_id, sig, (), sig.at)
        else:
            cluster_id = placement.cluster_id
            last = page.last.get(cluster_id)
            if last is None:  # a stored cluster's latest score where the page found it
                last = max((t for filed in retrieved for c, t in filed if c == cluster_id), default=sig.at)
            page.add(cluster_id, sig, _members_of(cluster_id, page, stored), last)
        result.placements.append(placement)
    return result


def _best(sig: Signature, ids: Sequence[str], page: _Page, stored: Mapping[str, Any], reference: Reference,
          thresholds: Thresholds) -> tuple[str, str, Decision] | None:
    """The best-scoring (cluster, matched case, decision) among the candidates, if any merges."""
    best: tuple[str, str, Decision] | None = None
    for cluster_id in ids:
        for other in _members_of(cluster_id, page, stored):
            decision = match(sig, other, reference, thresholds)
            if decision is not None and (best is None or decision.score > best[2].score):
                best = (cluster_id, other.key, decision)
    return best


def _placement(case: StoredCase, sig: Signature, best: tuple[str, str, Decision] | None, page: _Page,
               records: Mapping[str, Cluster | None], result: Placements) -> Placement:
    new_id = f"{NEW}{len(page.first_case)}"
    if best is None:
        return Placement(case, sig, new_id)
    cluster_id, matched_key, decision = best
    if cluster_id.startswith(NEW):
        first = page.first_case[cluster_id]
        opened = first.status not in CLOSED_STATUSES or case.received_at <= first.updated_at
        return Placement(case, sig, cluster_id, decision, matched_key) if opened else \
            Placement(case, sig, new_id, recurrence_of=cluster_id)
    if cluster_id not in records:
        result.unread.add(cluster_id)
        return Placement(case, sig, cluster_id, decision, matched_key)
    record = records[cluster_id]
    if record is None:  # merged away since it was retrieved
        return Placement(case, sig, new_id)
    if record.open_at(case.received_at):
        return Placement(case, sig, cluster_id, decision, matched_key)
    return Placement(case, sig, new_id, recurrence_of=cluster_id)


def _members_of(cluster_id: str, page: _Page, stored: Mapping[str, Any]) -> tuple[Signature, ...]:
    found = page.members.get(cluster_id)
    return found if found is not None else _signatures(stored.get(cluster_id))


# -- stored signatures, parsed --------------------------------------------------------------------

SIGNATURE_LISTS_CACHED = 8192
"""Stored signature lists kept parsed. A page of 100 cases reads up to ~3,000 candidate clusters, and
consecutive pages read mostly the same ones: at 2,048 a 100k store's pages pushed each other's lists
out: 7.8 parses a case, against 1.6 at 8,192. Measured with the bench's 100k fill, where the two caches
at these sizes hold ~43 MB more than at 2,048 / 8,192 and the fill's Python time per case is 3–9 % lower."""
MEMBERS_CACHED = 16384
"""Member signatures kept parsed (a changed list re-parses only its new member): 4.2 parses a case at
a 100k store with 8,192, 1.4 at 16,384."""


@functools.lru_cache(maxsize=SIGNATURE_LISTS_CACHED)
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
    if not (body.startswith('[{"k": ') and body.endswith("}]")):  # empty, or not written by the store
        return [json.dumps(member, ensure_ascii=False) for member in (json.loads(body) if body else [])]
    parts = body[1:-1].split(_NEXT_MEMBER)
    last = len(parts) - 1
    return [("" if i == 0 else '{"k": ') + part + ("" if i == last else "}") for i, part in enumerate(parts)]


@functools.lru_cache(maxsize=MEMBERS_CACHED)
def _signature(member: str) -> Signature:
    """One member's signature, cached by its text: a growing cluster's list changes with every report,
    but its members' signatures do not, and a big cluster's eight were parsed again for each change."""
    return Signature.load(json.loads(member))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

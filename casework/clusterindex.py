"""The dispatch view's indexes: which sets a cluster is filed under, and searching them.

A cluster is filed under its members' channels, regions (each with every ancestor, so a street's set
holds everything beneath it), categories (likewise) and identity hashes, its status and its department
(see :func:`memberships` and :func:`resident_keys`), and scored in one sorted set per sort order. A
search is set algebra in one ``MULTI``: alternatives within a filter unioned, everything intersected with
the sort order's sorted set (weights keep its score); ``minCases`` trims a scratch copy by report count
first. Results are kept a few seconds under a name made from the query and the clusters' change counter;
pages are read newest (highest score) first with keyset cursors, as :mod:`casework.search` does.

Text is not indexed per cluster: a cluster is listed when one of its cases matches the text as the
case search reads it (:func:`casework.search.text_keys`: every bigram, single characters in titles).
One script intersects the cases' text sets and maps the cases found to their clusters through
``cl:of``. Filing every cluster under its members' bigrams as well cost about a hundred more set
writes per new case, for a filter that is read far less often than cases arrive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from casework import keys
from casework.model import StoredCase
from casework.search import SearchPlan, decode_cursor, encode_cursor, read_page, text_keys

if TYPE_CHECKING:
    from casework.clusters import Cluster
    from casework.reference import Reference

__all__ = ["ClusterPage", "ClusterQuery", "ClusterSort", "is_resident_key", "memberships", "resident_keys",
           "search_clusters"]


class ClusterSort(StrEnum):
    NEWEST = "last"          # last report first
    MOST_REPORTS = "count"
    RISK = "risk"
    DEADLINE = "deadline"    # soonest deadline first; clusters without one last


@dataclass(frozen=True, slots=True)
class ClusterQuery:
    """GraphQL's ``ClusterFilter`` in domain terms, plus the viewer's scope as alternatives."""

    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    region_id: str | None = None
    category_id: str | None = None
    department_id: str | None = None
    text: str | None = None
    overdue: bool | None = None
    min_cases: int | None = None
    # rights: a cluster is listed when any of these index keys holds it; None = no restriction
    scope_keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ClusterPage:
    ids: tuple[str, ...]
    total_count: int
    cursors: tuple[str, ...]
    has_next_page: bool
    has_previous_page: bool
    clusters: tuple[Cluster, ...] = ()


def memberships(cluster: Cluster, cases: Iterable[StoredCase], reference: Reference) -> set[str]:
    """The index sets ``cases`` add to ``cluster`` but its residents' (status and department are the
    store's to set). A cluster has a few of them however many cases it has: the store keeps them in
    the cluster's record (``ix``) and moves exactly those that change."""
    found: set[str] = set()
    for case in cases:
        found.add(keys.cluster_index("ch", case.channel))
        if case.region_id:
            found.update(keys.cluster_index("rg", r.id) for r in reference.region_ancestors(case.region_id))
        if case.category_id:
            found.update(keys.cluster_index("ct", c.id)
                         for c in reference.category_ancestors(case.category_id))
    if cluster.department_id:
        found.add(keys.cluster_index("dep", cluster.department_id))
    return found


def resident_keys(cases: Iterable[StoredCase], appellants: Callable[[StoredCase], list[str]]) -> set[str]:
    """The index sets of the residents (identity hashes) of ``cases``: one per resident, so a mass
    incident's cluster is in thousands. They are only ever added as cases join and are not kept in
    the cluster's record; a split or merge works out the ones to leave from the cases it moves."""
    return {keys.cluster_index("who", h) for case in cases for h in appellants(case)}


def is_resident_key(key: str) -> bool:
    """Whether ``key`` is one of :func:`resident_keys`' sets."""
    return key.startswith(_WHO)


_WHO = keys.cluster_index("who", "")


def _groups(query: ClusterQuery) -> list[tuple[str, ...]]:
    groups: list[tuple[str, ...]] = []
    if query.channels:
        groups.append(tuple(keys.cluster_index("ch", c) for c in sorted(set(query.channels))))
    if query.statuses:
        groups.append(tuple(keys.cluster_index("st", s) for s in sorted(set(query.statuses))))
    if query.region_id:
        groups.append((keys.cluster_index("rg", query.region_id),))
    if query.category_id:
        groups.append((keys.cluster_index("ct", query.category_id),))
    if query.department_id:
        groups.append((keys.cluster_index("dep", query.department_id),))
    if query.overdue:
        groups.append((keys.CLUSTER_OVERDUE,))
    if query.scope_keys is not None:
        groups.append(tuple(sorted(set(query.scope_keys))) or (keys.cluster_query("nothing"),))
    return groups


async def search_clusters(redis: Any, query: ClusterQuery, sort: ClusterSort, *, first: int,
                          after: str | None, ttl: int) -> ClusterPage:
    """One page of cluster ids, best first for ``sort``; ``total_count`` of the whole result."""
    if first < 0:
        raise ValueError("first must not be negative")
    position = decode_cursor(after) if after else None
    groups, words = _groups(query), text_keys(query.text)
    source = keys.cluster_order(sort.value)
    trimmed = bool(query.min_cases and query.min_cases > 1)
    needs_build = bool(groups or words) or query.overdue is False or trimmed
    if needs_build:
        # a text filter reads the cases' text index: a case's new words change its result too
        generations = await redis.mget(keys.CLUSTER_GENERATION, keys.GENERATION)
        body = json.dumps([groups, words, sort.value, query.overdue, query.min_cases,
                           [int(_text(g or b"0")) for g in generations]], ensure_ascii=False)
        name = keys.cluster_query(hashlib.sha256(body.encode()).hexdigest()[:32])
        if not await redis.expire(name, ttl):
            await _build(redis, name, groups, words, source, query, ttl)
        source = name
    page = await read_page(redis, source, SearchPlan((), None, None, None), position, first + 1)
    shown = page.rows[:first]
    return ClusterPage(ids=tuple(key for key, _ in shown), total_count=page.total,
                       cursors=tuple(encode_cursor(score, key) for key, score in shown),
                       has_next_page=len(page.rows) > first, has_previous_page=position is not None)


async def _build(redis: Any, name: str, groups: list[tuple[str, ...]], words: list[str], order: str,
                 query: ClusterQuery, ttl: int) -> None:
    inputs: dict[str, float] = {order: 1.0}
    scratch: list[str] = []
    async with redis.pipeline(transaction=True) as pipe:
        if words:
            part = f"{name}:t"
            pipe.eval(_CLUSTERS_OF_CASES, 2 + len(words), part, keys.CLUSTER_OF, *words)
            scratch.append(part)
            inputs[part] = 0.0
        for index, group in enumerate(groups):
            if len(group) == 1:
                inputs[group[0]] = 0.0
                continue
            part = f"{name}:{index}"
            pipe.zunionstore(part, list(group))
            scratch.append(part)
            inputs[part] = 0.0
        if query.min_cases and query.min_cases > 1:
            part = f"{name}:n"
            pipe.zrangestore(part, keys.cluster_order("count"), query.min_cases, "+inf", byscore=True)
            scratch.append(part)
            inputs[part] = 0.0
        pipe.zinterstore(name, inputs, aggregate="SUM")
        if query.overdue is False:
            pipe.zdiffstore(name, [name, keys.CLUSTER_OVERDUE])
        pipe.expire(name, ttl)
        if scratch:
            pipe.delete(*scratch)
        await pipe.execute()


_CLUSTERS_OF_CASES = """
-- KEYS[1]: the set to fill; KEYS[2]: case key -> cluster id; KEYS[3..]: case index sets, all required
local cases = redis.call('SINTER', unpack(KEYS, 3))
redis.call('DEL', KEYS[1])
for first = 1, #cases, 500 do
  local ids = redis.call('HMGET', KEYS[2], unpack(cases, first, math.min(first + 499, #cases)))
  local found = {}
  for i = 1, #ids do
    if ids[i] then found[#found + 1] = ids[i] end
  end
  if #found > 0 then redis.call('SADD', KEYS[1], unpack(found)) end
end
return #cases
"""
"""The clusters of the cases in every one of the given index sets (a text filter through the case index)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

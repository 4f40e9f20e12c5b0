"""The dispatch view's indexes: which sets a cluster is filed under, and searching them.

A cluster is filed under its members' channels, regions (each with every ancestor, so a street's set
holds everything beneath it), categories (likewise), identity hashes and text bigrams, its status and
its department (see :func:`memberships`), and scored in one sorted set per sort order. A search is set
algebra in one ``MULTI``: alternatives within a filter unioned, everything intersected with the sort
order's sorted set (weights keep its score); ``minCases`` trims a scratch copy by report count first.
Results are kept a few seconds under a name made from the query and the clusters' change counter;
pages are read newest (highest score) first with keyset cursors, as :mod:`casework.search` does.
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

__all__ = ["ClusterPage", "ClusterQuery", "ClusterSort", "memberships", "search_clusters"]


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


def memberships(cluster: Cluster, cases: Iterable[StoredCase], reference: Reference,
                appellants: Callable[[StoredCase], list[str]]) -> set[str]:
    """The index sets ``cases`` add to ``cluster`` (status and department are the store's to set)."""
    found: set[str] = set()
    for case in cases:
        found.add(keys.cluster_index("ch", case.channel))
        if case.region_id:
            found.update(keys.cluster_index("rg", r.id) for r in reference.region_ancestors(case.region_id))
        if case.category_id:
            found.update(keys.cluster_index("ct", c.id)
                         for c in reference.category_ancestors(case.category_id))
        found.update(keys.cluster_index("who", h) for h in appellants(case))
        found.update(keys.cluster_text_index(g) for g in _grams(case))
    if cluster.department_id:
        found.add(keys.cluster_index("dep", cluster.department_id))
    return found


def _grams(case: StoredCase) -> set[str]:
    from casework.text import index_terms

    grams, _ = index_terms(case.title, case.content)
    return grams


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
    for key in text_keys(query.text):
        if key.startswith(keys.text_bigram_index("")):
            groups.append((keys.cluster_text_index(key[len(keys.text_bigram_index("")):]),))
    if query.scope_keys is not None:
        groups.append(tuple(sorted(set(query.scope_keys))) or (keys.cluster_query("nothing"),))
    return groups


async def search_clusters(redis: Any, query: ClusterQuery, sort: ClusterSort, *, first: int,
                          after: str | None, ttl: int) -> ClusterPage:
    """One page of cluster ids, best first for ``sort``; ``total_count`` of the whole result."""
    if first < 0:
        raise ValueError("first must not be negative")
    position = decode_cursor(after) if after else None
    groups = _groups(query)
    source = keys.cluster_order(sort.value)
    needs_build = bool(groups) or query.overdue is False or bool(query.min_cases and query.min_cases > 1)
    if needs_build:
        generation = int(_text(await redis.get(keys.CLUSTER_GENERATION) or b"0"))
        body = json.dumps([groups, sort.value, query.overdue, query.min_cases, generation])
        name = keys.cluster_query(hashlib.sha256(body.encode()).hexdigest()[:32])
        if not await redis.expire(name, ttl):
            await _build(redis, name, groups, source, query, ttl)
        source = name
    page = await read_page(redis, source, SearchPlan((), None, None, None), position, first + 1)
    shown = page.rows[:first]
    return ClusterPage(ids=tuple(key for key, _ in shown), total_count=page.total,
                       cursors=tuple(encode_cursor(score, key) for key, score in shown),
                       has_next_page=len(page.rows) > first, has_previous_page=position is not None)


async def _build(redis: Any, name: str, groups: list[tuple[str, ...]], order: str, query: ClusterQuery,
                 ttl: int) -> None:
    inputs: dict[str, float] = {order: 1.0}
    scratch: list[str] = []
    async with redis.pipeline(transaction=True) as pipe:
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

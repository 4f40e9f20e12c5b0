"""Clusters (民声云 dispatch units): the dispatch view, a case's cluster and duplicates, corrections.

Rights: a cluster is visible when one of its cases is (:func:`auth.rights.can_view_cluster`), and
only those cases are listed; the view is restricted in the indexes by the viewer's scope. Merging and
splitting take :data:`auth.rights.Action.MERGE` on every case involved (district and street roles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from auth.rights import Action, can_act, case_scope
from casework import keys
from casework.clusters import Cluster, ClusterConflict, ClusterPage, ClusterQuery, ClusterSort, ClusterStore
from casework.model import StoredCase
from connectors import UnifiedStatus
from resolvers.cases import page_size
from resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound, Unauthenticated
from resolvers.ids import encode_global_id
from resolvers.rights import audited, case_facts, visible_case, visible_cases

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["ClusterFilterValues", "case_cluster", "case_duplicates", "cluster_cases", "dispatch_view",
           "get_cluster", "merge_clusters", "split_case"]

MAX_TEXT_FILTER = 200
MAX_MERGE = 50
MIN_SCAN = 20
"""Cases read at least at a time while looking for those the viewer may see (one round trip each)."""


@dataclass(frozen=True, slots=True)
class ClusterFilterValues:
    """``ClusterFilter`` with ids decoded."""

    channels: tuple[str, ...] = ()
    statuses: tuple[UnifiedStatus, ...] = ()
    region_id: str | None = None
    category_id: str | None = None
    department_id: str | None = None
    text: str | None = None
    overdue: bool | None = None
    min_cases: int | None = None


def _store(ctx: GraphContext) -> ClusterStore:
    store = ctx.resources.clusters
    if store is None:
        raise NotFound("clusters are not kept in this deployment")
    return store


def _scope_keys(ctx: GraphContext) -> tuple[str, ...] | None:
    """The viewer's scope as cluster index keys (None: everything)."""
    scope = case_scope(ctx.viewer)
    if scope.everything:
        return None
    found = [keys.cluster_index("rg", r) for r in scope.region_ids]
    found += [keys.cluster_index("dep", d) for d in scope.department_ids]
    found += [keys.cluster_index("who", h) for h in scope.identity_hashes]
    if scope.petitions:
        found.append(keys.cluster_index("ch", "petition"))
    return tuple(found)


def _query(ctx: GraphContext, values: ClusterFilterValues) -> ClusterQuery:
    reference = ctx.resources.reference
    if values.region_id is not None and values.region_id not in reference.regions:
        raise BadUserInput(f"no region {values.region_id!r}", argument="filter.regionId")
    if values.category_id is not None and values.category_id not in reference.categories:
        raise BadUserInput(f"no category {values.category_id!r}", argument="filter.categoryId")
    if values.text is not None and len(values.text) > MAX_TEXT_FILTER:
        raise BadUserInput(f"text filter longer than {MAX_TEXT_FILTER} characters", argument="filter.text")
    if values.min_cases is not None and values.min_cases < 0:
        raise BadUserInput("minCases must not be negative", argument="filter.minCases")
    return ClusterQuery(channels=values.channels, statuses=tuple(s.value for s in values.statuses),
                        region_id=values.region_id, category_id=values.category_id,
                        department_id=values.department_id, text=(values.text or "").strip() or None,
                        overdue=values.overdue, min_cases=values.min_cases, scope_keys=_scope_keys(ctx))


async def dispatch_view(ctx: GraphContext, values: ClusterFilterValues, sort: ClusterSort, first: int | None,
                        after: str | None) -> ClusterPage:
    """One page of the dispatch pool (民声云), restricted to what the viewer may see."""
    if not ctx.viewer.roles:
        raise Unauthenticated("log in to see the dispatch view")
    size = page_size(ctx, first)
    try:
        return await _store(ctx).search(_query(ctx, values), sort, first=size, after=after)
    except ValueError as exc:
        raise BadUserInput(f"invalid cursor: {exc}", argument="after") from None


async def _first_visible(ctx: GraphContext, keys: Sequence[str], count: int,
                         skip: str | None = None) -> list[StoredCase]:
    """The first ``count`` cases of ``keys`` (but ``skip``) that the viewer may see, in order.

    Read a slice at a time: a mass incident's cluster holds thousands of cases, and reading them all
    to show a page of them took 0.56 s at 20,000.
    """
    shown: list[StoredCase] = []
    if count <= 0:
        return shown
    step = max(count, MIN_SCAN)
    for start in range(0, len(keys), step):
        wanted = [key for key in keys[start:start + step] if key != skip]
        shown += await visible_cases(ctx, await ctx.loaders.cases.load_many(wanted))
        if len(shown) >= count:
            break
    return shown[:count]


async def get_cluster(ctx: GraphContext, cluster_id: str) -> Cluster | None:
    """The cluster, or None when there is none or the viewer may see none of its cases."""
    cluster = await _store(ctx).get(cluster_id)
    if cluster is None:
        return None
    members = await ctx.loaders.cluster_members.load(cluster_id)
    return cluster if await _first_visible(ctx, members, 1) else None


async def cluster_cases(ctx: GraphContext, cluster: Cluster, *, first: int | None = None,
                        after: str | None = None, skip: str | None = None) -> list[StoredCase]:
    """The cluster's cases the viewer may see, oldest report first: at most ``first`` (the largest page
    when None), those after the case ``after`` (a case key of the cluster), ``skip`` left out.

    Raises:
        BadUserInput: ``first`` out of bounds, or ``after`` not a case of this cluster.
    """
    count = ctx.resources.limits.max_page_size if first is None else page_size(ctx, first)
    members = await ctx.loaders.cluster_members.load(cluster.id)
    start = 0
    if after is not None:
        try:
            start = members.index(after) + 1
        except ValueError:
            raise BadUserInput("after must be a case of this cluster", argument="after") from None
    return await _first_visible(ctx, members[start:], count, skip)


async def case_cluster(ctx: GraphContext, case: StoredCase) -> Cluster | None:
    cluster_id = await _store(ctx).cluster_of(case.key)
    return None if cluster_id is None else await _store(ctx).get(cluster_id)


async def case_duplicates(ctx: GraphContext, case: StoredCase, *, first: int | None = None,
                          after: str | None = None) -> list[StoredCase]:
    """The other cases of the case's cluster that the viewer may see (see :func:`cluster_cases`)."""
    cluster = await case_cluster(ctx, case)
    if cluster is None:
        return []
    return await cluster_cases(ctx, cluster, first=first, after=after, skip=case.key)


async def _require_merge_right(ctx: GraphContext, cases: list[StoredCase]) -> None:
    if not ctx.viewer.roles:
        raise Unauthenticated("log in to correct clusters")
    for case in cases:
        if not can_act(ctx.viewer, Action.MERGE, await case_facts(ctx, case)):
            raise Forbidden("only dispatchers of the case's area may merge or split clusters")


async def merge_clusters(ctx: GraphContext, cluster_ids: list[str]) -> Cluster:
    if len(set(cluster_ids)) < 2:
        raise BadUserInput("give at least two different clusters to merge", argument="ids")
    if len(cluster_ids) > MAX_MERGE:
        raise BadUserInput(f"at most {MAX_MERGE} clusters at once", argument="ids")
    store = _store(ctx)
    clusters = await store.get_many(cluster_ids)
    if any(c is None for c in clusters):
        raise NotFound("no such cluster")
    members = [k for listed in await store.members_many(cluster_ids) for k in listed]
    cases = [c for c in await ctx.loaders.cases.load_many(members) if c is not None]
    with audited(ctx, "mergeClusters", ",".join(encode_global_id("Cluster", i) for i in cluster_ids)):
        await _require_merge_right(ctx, cases)
        try:
            return await store.merge(cluster_ids, by=ctx.viewer.username)
        except KeyError:
            raise NotFound("no such cluster") from None
        except ClusterConflict as exc:
            raise Conflict(str(exc)) from None


async def split_case(ctx: GraphContext, case_key: str) -> Cluster:
    """Take the case out of its cluster; answers the new cluster of the case."""
    case = await ctx.loaders.cases.load(case_key)
    if await visible_case(ctx, case) is None:
        raise NotFound("no such case")
    assert case is not None
    with audited(ctx, "splitCase", encode_global_id("Case", case_key)):
        await _require_merge_right(ctx, [case])
        try:
            return await _store(ctx).split(case_key, by=ctx.viewer.username)
        except KeyError:
            raise NotFound("the case is not clustered yet") from None
        except ClusterConflict as exc:
            raise Conflict(str(exc)) from None

"""What the dispatch mutations and queries do: rights, audit, and the domain's refusals as GraphQL errors.

Every mutation (1) finds the cluster and its member cases, (2) checks the viewer may act on it —
a cluster is acted on through its member cases: the viewer must be allowed the action on at least
one of them (a cluster the viewer cannot see at all is NOT_FOUND), (3) runs the domain operation
and (4) audits the write, whatever the outcome. The domain's refusals map to codes:
:class:`~casework.assignments.InvalidTransition` → CONFLICT, ``InvalidInput`` → BAD_USER_INPUT,
``UnknownObject`` → NOT_FOUND.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from auth.audit import Outcome
from auth.rights import (
    Action,
    can_act,
    can_view_case,
    can_view_stats,
    case_scope,
    is_operator,
)
from auth.viewer import Role
from casework.assignments import DispatchError, DispatchRecord, InvalidInput, InvalidTransition, Rating
from casework.clusterbook import ClusterView
from casework.clusters import Cluster
from casework.dispatch import Dispatcher
from casework.model import StoredCase
from casework.outbox import Delivery, Outbox
from casework.reference import Department
from casework.routing import Tier
from casework.stats import StatsFilter
from casework.whistles import Whistle, WhistleBook
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput, Conflict, Forbidden, GraphError, NotFound, Unauthenticated
from resolvers.rights import actor_of, audit_write, case_facts

__all__ = [
    "act_on_case",
    "act_on_cluster",
    "case_record",
    "cluster_record",
    "dispatcher",
    "domain_errors",
    "now",
    "outbox",
    "scoped_stats_filter",
    "suggested_department",
    "visible_record",
    "whistles",
]

T = TypeVar("T")


def dispatcher(ctx: GraphContext) -> Dispatcher:
    found = ctx.resources.dispatcher
    if found is None:
        raise GraphError("dispatch is not configured in this gateway")
    return found


def outbox(ctx: GraphContext) -> Outbox:
    found = ctx.resources.outbox
    if found is None:
        raise GraphError("the write-back outbox is not configured in this gateway")
    return found


def whistles(ctx: GraphContext) -> WhistleBook:
    found = ctx.resources.whistles
    if found is None:
        raise GraphError("whistle orders are not configured in this gateway")
    return found


@contextlib.asynccontextmanager
async def domain_errors() -> AsyncIterator[None]:
    """Translate the dispatch step's refusals into the graph's errors, once, here."""
    try:
        yield
    except InvalidTransition as exc:
        raise Conflict(exc.message) from None
    except InvalidInput as exc:
        raise BadUserInput(exc.message) from None
    except DispatchError as exc:  # UnknownObject
        raise NotFound(exc.message) from None


async def _members(ctx: GraphContext, cluster: ClusterView) -> list[StoredCase]:
    return [c for c in await ctx.resources.store.get_many(list(cluster.members)) if c is not None]


async def _require(ctx: GraphContext, action: Action, cases: list[StoredCase], object_id: str) -> None:
    """A cluster is acted on through its cases: allowed when the viewer may act on one of them."""
    viewer = ctx.viewer
    if not viewer.roles:
        raise Unauthenticated("log in to do this")
    facts = [await case_facts(ctx, case) for case in cases]
    if not any(can_view_case(viewer, f) for f in facts):
        raise NotFound("no such object")
    if not any(can_act(viewer, action, f) for f in facts):
        audit_write(ctx, str(action), object_id, outcome=Outcome.DENIED)
        raise Forbidden(f"you may not {action} this")


async def _audited(ctx: GraphContext, action: str, object_id: str, run: Callable[[], Awaitable[T]]) -> T:
    try:
        async with domain_errors():
            result = await run()
    except GraphError as exc:
        audit_write(ctx, action, object_id, outcome=Outcome.FAILED, detail=exc.message)
        raise
    audit_write(ctx, action, object_id)
    return result


async def act_on_cluster(
    ctx: GraphContext,
    action: Action,
    mutation: str,
    cluster_id: str,
    run: Callable[[Dispatcher], Awaitable[T]],
) -> T:
    """Check the rights on ``cluster_id``, then ``run`` the domain operation, audited as ``mutation``."""
    found = dispatcher(ctx)
    async with domain_errors():
        cluster = await found.cluster(cluster_id)
    await _require(ctx, action, await _members(ctx, cluster), cluster_id)
    return await _audited(ctx, mutation, cluster_id, lambda: run(found))


async def act_on_case(
    ctx: GraphContext, action: Action, mutation: str, case_key: str, run: Callable[[Dispatcher], Awaitable[T]]
) -> T:
    """As :func:`act_on_cluster`, for an operation on one member case (a resident's rating)."""
    found = dispatcher(ctx)
    case = await ctx.resources.store.get(case_key)
    cluster_id = await found.clusters.cluster_of(case_key)
    if case is None or cluster_id is None:
        raise NotFound("no such case")
    await _require(ctx, action, [case], case_key)
    return await _audited(ctx, mutation, case_key, lambda: run(found))


async def evaluate(
    ctx: GraphContext, case_key: str, rating: Rating, comment: str, by_channel: bool
) -> DispatchRecord:
    """A resident rates their own case; an operator may record a rating the channel reported."""
    viewer = ctx.viewer
    if by_channel:
        if not is_operator(viewer):
            raise Forbidden("only the command centre records ratings reported by a channel")
        return await _audited(
            ctx,
            "evaluateCase",
            case_key,
            lambda: dispatcher(ctx).evaluate(case_key, actor_of(viewer), rating, comment, by_channel=True),
        )
    return await act_on_case(
        ctx,
        Action.EVALUATE,
        "evaluateCase",
        case_key,
        lambda d: d.evaluate(case_key, actor_of(viewer), rating, comment),
    )


def handler_department(ctx: GraphContext, record: DispatchRecord, assignment_id: str) -> str:
    """The department a signing/reporting viewer acts for: its own, or (operators) the assignment's."""
    viewer = ctx.viewer
    if viewer.department_id:
        return viewer.department_id
    return record.assignment(assignment_id).department_id


def tier_of(value: str | None) -> Tier | None:
    if value is None:
        return None
    try:
        return Tier(value)
    except ValueError:
        raise BadUserInput(f"unknown tier {value!r}") from None


async def issue_whistle(
    ctx: GraphContext,
    cluster_id: str | None,
    departments: list[str],
    place: str,
    report_by: datetime,
    summary: str,
) -> Whistle:
    viewer = ctx.viewer
    members: tuple[str, ...] = ()
    region_id = None
    if cluster_id is not None:
        found = dispatcher(ctx)
        async with domain_errors():
            cluster = await found.cluster(cluster_id)
        await _require(ctx, Action.WHISTLE, await _members(ctx, cluster), cluster_id)
        members, region_id = cluster.members, cluster.region_id
    elif not viewer.roles & {Role.DISTRICT, Role.STREET, Role.COMMUNITY, Role.OPEN}:
        raise Forbidden("only communities, streets and the district issue whistle orders")
    return await _audited(
        ctx,
        "issueWhistle",
        cluster_id or "-",
        lambda: whistles(ctx).issue(
            departments=departments,
            place=place,
            report_by=report_by,
            summary=summary,
            actor=actor_of(viewer),
            cluster_id=cluster_id,
            region_id=region_id,
            members=members,
        ),
    )


async def report_to_whistle(ctx: GraphContext, sequence: str, department_id: str | None) -> Whistle:
    viewer = ctx.viewer
    if not viewer.roles:
        raise Unauthenticated("log in to do this")
    department = viewer.department_id or (
        department_id if Role.OPEN in viewer.roles or is_operator(viewer) else None
    )
    if department is None:
        raise Forbidden("only a summoned department reports to a whistle order")
    return await _audited(
        ctx, "reportToWhistle", sequence, lambda: whistles(ctx).report(sequence, department, actor_of(viewer))
    )


def scoped_stats_filter(ctx: GraphContext, flt: StatsFilter) -> StatsFilter:
    """The filter narrowed to what the viewer may count (statistics are for staff only)."""
    viewer = ctx.viewer
    if not viewer.roles:
        raise Unauthenticated("log in to see statistics")
    if not can_view_stats(viewer):
        raise Forbidden("statistics are for staff")
    scope = case_scope(viewer)
    if scope.everything:
        return flt
    departments = flt.departments
    if scope.department_ids and not scope.region_ids:
        departments = scope.department_ids if departments is None else departments & scope.department_ids
    return replace(flt, departments=departments, regions=frozenset(scope.region_ids) or None)


async def write_backs(ctx: GraphContext, case_key: str) -> list[Delivery]:
    found = ctx.resources.outbox
    return [] if found is None else await found.for_case(case_key)


def now(ctx: GraphContext) -> datetime:
    found = ctx.resources.dispatcher
    return found.clock() if found is not None else datetime.now(UTC)


async def visible_record(ctx: GraphContext, cluster_id: str) -> DispatchRecord | None:
    """The cluster's dispatch record when the viewer may see one of its cases, else ``None``."""
    found = dispatcher(ctx)
    cluster = await found.clusters.load(found.redis, cluster_id)
    if cluster is None:
        return None
    record = await found.record(cluster_id)
    facts = [await case_facts(ctx, case) for case in await _members(ctx, cluster)]
    return record if any(can_view_case(ctx.viewer, f) for f in facts) else None


async def case_record(ctx: GraphContext, case_key: str) -> DispatchRecord | None:
    """The dispatch record of a case's cluster (the case itself was already checked)."""
    found = ctx.resources.dispatcher
    if found is None:
        return None
    cluster_id = await found.clusters.cluster_of(case_key)
    return None if cluster_id is None else await found.record(cluster_id)


def suggested_department(ctx: GraphContext, cluster: Cluster) -> Department | None:
    """The routing rules' department for a cluster, from its stored facts (no Redis round trip)."""
    found = ctx.resources.dispatcher
    if found is None:
        return None
    route = found.routing.suggest(
        cluster.category_id, cluster.region_id, case_count=cluster.case_count, people=cluster.head_count
    )
    return ctx.resources.reference.departments.get(route.department_id or "")


async def cluster_record(ctx: GraphContext, cluster_id: str) -> DispatchRecord | None:
    """The dispatch record of a cluster the viewer already sees."""
    found = ctx.resources.dispatcher
    return None if found is None else await found.record(cluster_id)

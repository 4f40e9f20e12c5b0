"""The dispatch mutations and queries: the closed loop, supervision, feedback, statistics (一张表, 一张图)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from auth.rights import Action
from casework.assignments import DispatchRecord, Rating, split_assignment_id
from casework.model import RegionLevel
from casework.stats import StatsFilter as DomainStatsFilter
from casework.workdays import BEIJING
from resolvers import dispatch as dispatch_resolvers
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput, NotFound
from resolvers.ids import decode_global_id, decode_id_of
from resolvers.rights import actor_of, require_operator
from schema.cases import Case
from schema.clusters import Cluster
from schema.dispatch import Assignment, ClusterDispatch, RegionRisk, StatsBucket, Whistle, WriteBack
from schema.types import described

__all__ = ["DispatchMutations", "DispatchQueries"]

Info = strawberry.Info[GraphContext, None]


@strawberry.enum(description="一张表's dimensions")
class StatsDimension(Enum):
    STREET = "street"
    COMMUNITY = "community"
    DEPARTMENT = "department"
    CATEGORY = "category"
    CHANNEL = "channel"
    DAY = "day"


@strawberry.input(description="What the statistics count; everything when empty.")
class StatsFilter:
    region_id: strawberry.ID | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.UNSET
    channels: list[str] | None = strawberry.UNSET
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="counted days from (Beijing)"
    )
    to: datetime | None = strawberry.field(
        default=None, description="counted days up to (Beijing), inclusive"
    )


@strawberry.input
class DispatchInput:
    cluster_id: strawberry.ID = strawberry.field(description="a Cluster id (a Case id names its cluster)")
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="default: the suggestion"
    )
    tier: str | None = strawberry.field(default=None, description="COMMUNITY, STREET or DISTRICT")
    note: str | None = None


@strawberry.input
class ProgressInput:
    assignment_id: strawberry.ID
    message: str


@strawberry.input
class ResolveInput:
    cluster_id: strawberry.ID
    reply: str = strawberry.field(description="办理结果: written back to every member case's channel")


@strawberry.input
class ReturnInput:
    assignment_id: strawberry.ID
    reason: str = strawberry.field(description="退单理由")


@strawberry.input
class EscalateInput:
    cluster_id: strawberry.ID
    reason: str


@strawberry.input
class WhistleInput:
    cluster_id: strawberry.ID | None = None
    department_ids: list[strawberry.ID] = strawberry.field(description="the departments summoned")
    place: str
    report_by: datetime = strawberry.field(description="when they must have reported (报到)")
    summary: str


@strawberry.input
class EvaluationInput:
    case_id: strawberry.ID
    rating: Rating
    comment: str | None = None
    reported_by_channel: bool = strawberry.field(default=False, description="a rating the channel collected")


@strawberry.type
class DispatchPayload:
    cluster: Cluster | None = strawberry.field(description="the 民声云 cluster after the change")
    dispatch: ClusterDispatch
    assignment: Assignment | None


@strawberry.type
class CasePayload:
    case: Case | None
    dispatch: ClusterDispatch


@strawberry.type
class WhistlePayload:
    whistle: Whistle


async def _payload(info: Info, record: DispatchRecord) -> DispatchPayload:
    current = record.current
    clusters = info.context.resources.clusters
    found = None if clusters is None else await clusters.get(record.cluster_id)
    return DispatchPayload(
        cluster=None if found is None else Cluster.of(found),
        dispatch=ClusterDispatch.of(record),
        assignment=Assignment.of(current) if current else None,
    )


async def _cluster_id(info: Info, global_id: str) -> str:
    type_name, key = decode_global_id(global_id)
    if type_name == "Cluster":
        return key
    if type_name == "Case":
        found = await dispatch_resolvers.dispatcher(info.context).clusters.cluster_of(key)
        if found is None:
            raise NotFound("no such case")
        return found
    raise BadUserInput(f"expected a Cluster or Case id, got the id of a {type_name}")


def _assignment_key(global_id: str) -> tuple[str, str]:
    key = decode_id_of("Assignment", global_id)
    try:
        cluster_id, _ = split_assignment_id(key)
    except ValueError as exc:
        raise BadUserInput(str(exc)) from None
    return cluster_id, key


def _department_key(global_id: strawberry.ID | None) -> str | None:
    return None if global_id is None else decode_id_of("Department", global_id)


def _actor(info: Info) -> str:
    return actor_of(info.context.viewer)


@strawberry.type
class DispatchMutations:
    @described("分拨: send a cluster from the pool to a department (default: the routing rules' suggestion).")
    async def dispatch_cluster(self, info: Info, input: DispatchInput) -> DispatchPayload:
        cluster_id = await _cluster_id(info, input.cluster_id)
        department, tier = _department_key(input.department_id), dispatch_resolvers.tier_of(input.tier)
        record = await dispatch_resolvers.act_on_cluster(
            info.context,
            Action.DISPATCH,
            "dispatchCluster",
            cluster_id,
            lambda d: d.dispatch(
                cluster_id, _actor(info), department_id=department, tier=tier, note=input.note or ""
            ),
        )
        return await _payload(info, record)

    @described("签收: the assigned department takes the assignment.")
    async def sign_assignment(self, info: Info, id: strawberry.ID) -> DispatchPayload:
        cluster_id, key = _assignment_key(id)
        record = await dispatch_resolvers.act_on_cluster(
            info.context, Action.SIGN, "signAssignment", cluster_id, lambda d: d.sign(key, _actor(info))
        )
        return await _payload(info, record)

    @described("办理进展: a progress note, written back to every source channel.")
    async def add_progress(self, info: Info, input: ProgressInput) -> DispatchPayload:
        cluster_id, key = _assignment_key(input.assignment_id)
        record = await dispatch_resolvers.act_on_cluster(
            info.context,
            Action.PROGRESS,
            "addProgress",
            cluster_id,
            lambda d: d.add_progress(key, _actor(info), input.message),
        )
        return await _payload(info, record)

    @described("办结: the cluster is resolved; every member case's channel hears it.")
    async def resolve_cluster(self, info: Info, input: ResolveInput) -> DispatchPayload:
        cluster_id = await _cluster_id(info, input.cluster_id)
        record = await dispatch_resolvers.act_on_cluster(
            info.context,
            Action.RESOLVE,
            "resolveCluster",
            cluster_id,
            lambda d: d.resolve(cluster_id, _actor(info), input.reply),
        )
        return await _payload(info, record)

    @described("退单: not this department's matter; the cluster goes back to the pool.")
    async def return_assignment(self, info: Info, input: ReturnInput) -> DispatchPayload:
        cluster_id, key = _assignment_key(input.assignment_id)
        record = await dispatch_resolvers.act_on_cluster(
            info.context,
            Action.RETURN,
            "returnAssignment",
            cluster_id,
            lambda d: d.give_back(key, _actor(info), input.reason),
        )
        return await _payload(info, record)

    @described("督办: escalate a cluster (flagged; the reason is written back).")
    async def escalate_cluster(self, info: Info, input: EscalateInput) -> DispatchPayload:
        cluster_id = await _cluster_id(info, input.cluster_id)
        record = await dispatch_resolvers.act_on_cluster(
            info.context,
            Action.ESCALATE,
            "escalateCluster",
            cluster_id,
            lambda d: d.escalate(cluster_id, _actor(info), input.reason),
        )
        return await _payload(info, record)

    @described("社区吹哨: a numbered order summoning departments to a place and time.")
    async def issue_whistle(self, info: Info, input: WhistleInput) -> WhistlePayload:
        cluster_id = None if input.cluster_id is None else await _cluster_id(info, input.cluster_id)
        departments = [decode_id_of("Department", d) for d in input.department_ids]
        whistle = await dispatch_resolvers.issue_whistle(
            info.context, cluster_id, departments, input.place, input.report_by, input.summary
        )
        return WhistlePayload(whistle=Whistle.of(whistle, dispatch_resolvers.now(info.context)))

    @described(
        "部门报到: the viewer's department reports to a whistle order (operators name the department)."
    )
    async def report_to_whistle(
        self, info: Info, id: strawberry.ID, department_id: strawberry.ID | None = None
    ) -> WhistlePayload:
        whistle = await dispatch_resolvers.report_to_whistle(
            info.context, decode_id_of("Whistle", id), _department_key(department_id)
        )
        return WhistlePayload(whistle=Whistle.of(whistle, dispatch_resolvers.now(info.context)))

    @described("评价: 满意 / 基本满意 / 不满意 for a resolved case; the last rating closes the cluster.")
    async def evaluate_case(self, info: Info, input: EvaluationInput) -> CasePayload:
        case_key = decode_id_of("Case", input.case_id)
        record = await dispatch_resolvers.evaluate(
            info.context, case_key, input.rating, input.comment or "", input.reported_by_channel
        )
        case = await info.context.resources.store.get(case_key)
        return CasePayload(case=Case.of(case) if case else None, dispatch=ClusterDispatch.of(record))

    @described("Put a dead-lettered write-back back on its case's queue (operators).")
    async def replay_write_back(self, info: Info, id: strawberry.ID) -> WriteBack:
        require_operator(info.context.viewer)
        found = await dispatch_resolvers.outbox(info.context).replay(str(id))
        if found is None:
            raise NotFound("no dead-lettered write-back with this id")
        return WriteBack.of(found)


def _day(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(BEIJING).date().isoformat()


def _domain_filter(info: Info, flt: StatsFilter | None) -> DomainStatsFilter:
    if flt is None:
        return DomainStatsFilter()
    reference = info.context.resources.reference
    regions = None
    if flt.region_id:
        region_id = decode_id_of("Region", flt.region_id)
        if region_id not in reference.regions:
            raise BadUserInput("unknown region")
        regions = frozenset(reference.region_descendant_ids(region_id) | {region_id})
    return DomainStatsFilter(
        regions=regions,
        departments=frozenset({decode_id_of("Department", flt.department_id)}) if flt.department_id else None,
        categories=(decode_id_of("EventCategory", flt.category_id),) if flt.category_id else None,
        channels=frozenset(flt.channels) if flt.channels else None,
        day_from=_day(flt.from_),
        day_to=_day(flt.to),
    )


def _label(info: Info, key: dict[str, str]) -> str:
    """The bucket's dimensions in words: region, department, category and channel names, the day."""
    reference = info.context.resources.reference
    channels = info.context.resources.channels
    words = []
    for dimension, value in key.items():
        if dimension in ("street", "community"):
            region = reference.regions.get(value)
            words.append(region.name if region else "未知地区")
        elif dimension == "department":
            department = reference.departments.get(value)
            words.append(department.short_name if department else "未分拨")
        elif dimension == "category":
            category = reference.categories.get(value)
            words.append(category.name if category else "未分类")
        elif dimension == "channel":
            runtime = channels.get(value)
            words.append(runtime.config.name if runtime else value)
        else:
            words.append(value)
    return " / ".join(words) or "合计"


@strawberry.type
class DispatchQueries:
    @described(
        "一张表: 受理量, 办结量, 化解率, 按期办结率, 满意率, overdue counts, grouped (counters, no scans)."
    )
    async def stats(
        self, info: Info, group_by: list[StatsDimension], filter: StatsFilter | None = None
    ) -> list[StatsBucket]:
        flt = dispatch_resolvers.scoped_stats_filter(info.context, _domain_filter(info, filter))
        found = dispatch_resolvers.dispatcher(info.context)
        buckets = await found.stats.stats(flt, [d.value for d in group_by], found.clock())
        return [StatsBucket.of(b, _label(info, b.key)) for b in buckets]

    @described(
        "一张图: each street (or community) with a risk level from volume, overdue, repeats, group petitions."
    )
    async def risk_map(
        self, info: Info, level: RegionLevel = RegionLevel.STREET, filter: StatsFilter | None = None
    ) -> list[RegionRisk]:
        flt = dispatch_resolvers.scoped_stats_filter(info.context, _domain_filter(info, filter))
        found = dispatch_resolvers.dispatcher(info.context)
        return [RegionRisk.of(r) for r in await found.stats.risk_map(level, flt, found.clock())]

    @described(
        "A cluster's dispatch state (a Cluster id, or a Case id for its cluster); null when not visible."
    )
    async def cluster_dispatch(self, info: Info, id: strawberry.ID) -> ClusterDispatch | None:
        cluster_id = await _cluster_id(info, id)
        record = await dispatch_resolvers.visible_record(info.context, cluster_id)
        return None if record is None else ClusterDispatch.of(record)

    @described("Write-backs that gave up or were refused by their channel, newest first (operators).")
    async def write_back_dead_letters(self, info: Info, first: int = 50) -> list[WriteBack]:
        require_operator(info.context.viewer)
        found = await dispatch_resolvers.outbox(info.context).dead_letters(max(1, min(first, 500)))
        return [WriteBack.of(d) for d in found]

    @described("A whistle order (吹哨单) by its id.")
    async def whistle(self, info: Info, id: strawberry.ID) -> Whistle | None:
        found = await dispatch_resolvers.whistles(info.context).get(decode_id_of("Whistle", id))
        return None if found is None else Whistle.of(found, dispatch_resolvers.now(info.context))

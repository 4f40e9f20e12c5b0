"""Dispatch, supervision and feedback in the graph: assignments, whistles, write-backs, statistics."""

from __future__ import annotations

from datetime import datetime

import strawberry

from casework.assignments import Assignment as AssignmentRecord
from casework.assignments import DispatchRecord, Rating
from casework.assignments import Evaluation as EvaluationRecord
from casework.deadlines import Card
from casework.dispatch import Dispatcher
from casework.outbox import Delivery, DeliveryState
from casework.routing import Route, Tier
from casework.stats import Bucket, RiskLevel
from casework.stats import RegionRisk as RegionRiskRecord
from casework.whistles import Whistle as WhistleRecord
from connectors import UnifiedStatus, WriteBackKind
from resolvers.context import GraphContext
from resolvers.ids import encode_global_id
from schema.types import Department, Node, Region, described

__all__ = ["Assignment", "ClusterDispatch", "Evaluation", "RegionRisk", "StatsBucket", "Whistle", "WriteBack"]

Info = strawberry.Info[GraphContext, None]

strawberry.enum(
    Tier, name="DispatchTier", description="COMMUNITY 社区当日 / STREET 街道或区职能部门 / DISTRICT 区级"
)
strawberry.enum(Card, name="SupervisionCard", description="督办: YELLOW 临期或刚超期, RED 严重超期或多次退单")
strawberry.enum(Rating, name="Rating", description="满意 / 基本满意 / 不满意")
strawberry.enum(DeliveryState, name="WriteBackState", description="PENDING, DELIVERED, DEAD (dead-lettered)")
strawberry.enum(WriteBackKind, name="WriteBackKind", description="SIGN, REPLY, RESOLVE, RETURN")
strawberry.enum(RiskLevel, name="RiskLevel", description="LOW, MEDIUM, HIGH")


def _department(info: Info, department_id: str | None) -> Department | None:
    found = info.context.resources.reference.departments.get(department_id or "")
    return None if found is None else Department.of(found)


def _dispatcher(info: Info) -> Dispatcher | None:
    return info.context.resources.dispatcher


@strawberry.type(description="One step of a cluster's handling (分拨, 签收, 办理进展, 退单, 办结, 督办).")
class ProgressNote:
    at: datetime
    actor: str
    kind: str
    message: str


@strawberry.type(description="A department's task for a cluster (派单), with its deadlines.")
class Assignment(Node):
    record: strawberry.Private[AssignmentRecord]
    status: UnifiedStatus
    tier: str
    dispatched_at: datetime
    dispatched_by: str
    automatic: bool = strawberry.field(description="系统自动分拨")
    sign_deadline: datetime | None
    deadline: datetime | None
    signed_at: datetime | None
    resolved_at: datetime | None
    returned_at: datetime | None
    return_reason: str | None
    note: str

    @classmethod
    def of(cls, a: AssignmentRecord) -> Assignment:
        return cls(
            id=strawberry.ID(encode_global_id("Assignment", a.id)),
            record=a,
            status=a.status,
            tier=a.tier,
            dispatched_at=a.dispatched_at,
            dispatched_by=a.dispatched_by,
            automatic=a.automatic,
            sign_deadline=a.sign_deadline,
            deadline=a.deadline,
            signed_at=a.signed_at,
            resolved_at=a.resolved_at,
            returned_at=a.returned_at,
            return_reason=a.return_reason,
            note=a.note,
        )

    @strawberry.field
    def department(self, info: Info) -> Department | None:
        return _department(info, self.record.department_id)


@strawberry.type(description="A resident's rating of the outcome (or one the channel reported).")
class Evaluation:
    case_id: strawberry.ID
    rating: Rating
    comment: str
    at: datetime
    reported_by_channel: bool

    @classmethod
    def of(cls, e: EvaluationRecord) -> Evaluation:
        return cls(
            case_id=strawberry.ID(encode_global_id("Case", e.case_key)),
            rating=e.rating,
            comment=e.comment,
            at=e.at,
            reported_by_channel=e.reported_by_channel,
        )


@strawberry.type(description="Where the routing rules send a cluster (分管 department, 属地, tier).")
class RouteSuggestion:
    route: strawberry.Private[Route]
    tier: Tier
    automatic: bool
    reason: str

    @strawberry.field
    def department(self, info: Info) -> Department | None:
        return _department(info, self.route.department_id)

    @strawberry.field
    def street(self, info: Info) -> Region | None:
        found = info.context.resources.reference.regions.get(self.route.street_id or "")
        return None if found is None else Region.of(found)

    @strawberry.field
    def community(self, info: Info) -> Region | None:
        found = info.context.resources.reference.regions.get(self.route.community_id or "")
        return None if found is None else Region.of(found)


@strawberry.type(description="A cluster's dispatch state: assignments, deadline, cards, evaluations.")
class ClusterDispatch:
    record: strawberry.Private[DispatchRecord]
    cluster_id: strawberry.ID
    status: UnifiedStatus
    version: int = strawberry.field(description="bumped by every change")
    returns: int = strawberry.field(description="退单 count")
    escalated: bool
    escalation_reason: str | None
    resolved_at: datetime | None
    resolution: str | None

    @classmethod
    def of(cls, r: DispatchRecord) -> ClusterDispatch:
        return cls(
            record=r,
            cluster_id=strawberry.ID(encode_global_id("Cluster", r.cluster_id)),
            status=r.status,
            version=r.version,
            returns=r.returns,
            escalated=r.escalated,
            escalation_reason=r.escalation_reason,
            resolved_at=r.resolved_at,
            resolution=r.resolution,
        )

    @described("the open assignment, or the last one")
    def assignment(self) -> Assignment | None:
        return None if self.record.current is None else Assignment.of(self.record.current)

    @strawberry.field
    def assignments(self) -> list[Assignment]:
        return [Assignment.of(a) for a in self.record.assignments]

    @strawberry.field
    def progress(self) -> list[ProgressNote]:
        return [
            ProgressNote(at=p.at, actor=p.actor, kind=p.kind, message=p.message) for p in self.record.progress
        ]

    @strawberry.field
    def evaluations(self) -> list[Evaluation]:
        return [Evaluation.of(e) for e in self.record.evaluations.values()]

    @described("the deadline that applies now (signing while unsigned and past it, else handling)")
    def deadline(self, info: Info) -> datetime | None:
        found = _dispatcher(info)
        return None if found is None else found.timing(self.record).deadline

    @strawberry.field
    def overdue(self, info: Info) -> bool:
        found = _dispatcher(info)
        return found is not None and found.timing(self.record).overdue

    @described("临期: less than the policy's share of the allowed time left")
    def near_due(self, info: Info) -> bool:
        found = _dispatcher(info)
        return found is not None and found.timing(self.record).near_due

    @strawberry.field
    def card(self, info: Info) -> Card:
        found = _dispatcher(info)
        return Card.NONE if found is None else found.timing(self.record).card

    @described("where the routing rules would send it")
    async def suggested_department(self, info: Info) -> RouteSuggestion | None:
        found = _dispatcher(info)
        if found is None:
            return None
        cluster = await found.clusters.load(found.redis, self.record.cluster_id)
        if cluster is None:
            return None
        route = found.suggest(cluster)
        return RouteSuggestion(route=route, tier=route.tier, automatic=route.automatic, reason=route.reason)


@strawberry.type(description="One write-back of a state change to a case's source channel.")
class WriteBack:
    id: strawberry.ID = strawberry.field(description="also the channel's idempotency key (action id)")
    case_id: strawberry.ID
    channel: str
    kind: WriteBackKind
    message: str
    event: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    source_status: str | None = strawberry.field(description="the channel's status word after it")
    duplicate: bool = strawberry.field(description="the channel had already applied it (a retry)")

    @classmethod
    def of(cls, d: Delivery) -> WriteBack:
        return cls(
            id=strawberry.ID(d.id),
            case_id=strawberry.ID(encode_global_id("Case", d.case_key)),
            channel=d.channel,
            kind=d.kind,
            message=d.message,
            event=d.event,
            state=d.state,
            attempts=d.attempts,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            last_error=d.last_error,
            source_status=d.source_status,
            duplicate=d.duplicate,
        )


@strawberry.type(description="A summoned department's report (报到).")
class WhistleSummons:
    department_id: strawberry.Private[str]
    reported_at: datetime | None
    reported_by: str | None
    late: bool = strawberry.field(description="not reported by the time, or reported after it")

    @strawberry.field
    def department(self, info: Info) -> Department | None:
        return _department(info, self.department_id)


@strawberry.type(description="吹哨单: a numbered order summoning departments to a place and time.")
class Whistle(Node):
    number: str
    place: str
    report_by: datetime
    summary: str
    issued_by: str
    issued_at: datetime
    cluster_id: strawberry.ID | None
    summons: list[WhistleSummons]

    @classmethod
    def of(cls, w: WhistleRecord, now: datetime) -> Whistle:
        return cls(
            id=strawberry.ID(encode_global_id("Whistle", str(w.sequence))),
            number=w.number,
            place=w.place,
            report_by=w.report_by,
            summary=w.summary,
            issued_by=w.issued_by,
            issued_at=w.issued_at,
            cluster_id=strawberry.ID(encode_global_id("Cluster", w.cluster_id)) if w.cluster_id else None,
            summons=[
                WhistleSummons(
                    department_id=s.department_id,
                    reported_at=s.reported_at,
                    reported_by=s.reported_by,
                    late=s.late(w.report_by, now),
                )
                for s in w.summons
            ],
        )


@strawberry.type(description="One row of 一张表: the counts of one group.")
class StatsBucket:
    key: str = strawberry.field(description="the group's dimension values joined by '|' ('' for the total)")
    label: str = strawberry.field(description="the group in words, e.g. 玉塘街道 / 区城管局")
    street_id: str | None
    community_id: str | None
    department_id: str | None
    category_id: str | None
    channel: str | None
    day: str | None
    received: int = strawberry.field(description="受理量")
    dispatched: int
    resolved: int = strawberry.field(description="办结量")
    resolved_on_time: int
    returned: int
    escalated: int
    evaluated: int
    satisfied: int = strawberry.field(description="满意 + 基本满意")
    repeats: int
    group_petitions: int
    overdue: int = strawberry.field(description="open assignments past their deadline now")
    resolution_rate: float | None = strawberry.field(description="化解率 = 办结量 / 受理量")
    on_time_rate: float | None = strawberry.field(description="按期办结率 = 按期办结 / 办结量")
    satisfaction_rate: float | None = strawberry.field(description="满意率 = 满意 / 评价数")

    @classmethod
    def of(cls, b: Bucket, label: str) -> StatsBucket:
        key, counts = b.key, b.counts

        def dim(name: str) -> str | None:
            value = key.get(name)
            return None if value in (None, "-") else value

        return cls(
            key="|".join(key.values()),
            label=label,
            street_id=dim("street"),
            community_id=dim("community"),
            department_id=dim("department"),
            category_id=dim("category"),
            channel=dim("channel"),
            day=dim("day"),
            received=counts["received"],
            dispatched=counts["dispatched"],
            resolved=counts["resolved"],
            resolved_on_time=counts["resolved_on_time"],
            returned=counts["returned"],
            escalated=counts["escalated"],
            evaluated=counts["evaluated"],
            satisfied=counts["satisfied"],
            repeats=counts["repeat"],
            group_petitions=counts["group"],
            overdue=b.overdue,
            resolution_rate=b.rate("resolved", "received"),
            on_time_rate=b.rate("resolved_on_time", "resolved"),
            satisfaction_rate=b.rate("satisfied", "evaluated"),
        )


@strawberry.type(
    description="One region of 一张图: its risk from volume, overdue work, repeats and group petitions."
)
class RegionRisk:
    record: strawberry.Private[RegionRiskRecord]
    received: int
    overdue: int
    repeats: int
    group_petitions: int
    score: float = strawberry.field(description="0–1")
    case_count: int = strawberry.field(description="受理量 (= received)")
    overdue_count: int = strawberry.field(description="open assignments past their deadline (= overdue)")
    level: RiskLevel

    @classmethod
    def of(cls, r: RegionRiskRecord) -> RegionRisk:
        return cls(
            record=r,
            received=r.received,
            overdue=r.overdue,
            repeats=r.repeats,
            group_petitions=r.group_petitions,
            score=r.score,
            level=r.level,
            case_count=r.received,
            overdue_count=r.overdue,
        )

    @strawberry.field
    def region(self, info: Info) -> Region | None:
        found = info.context.resources.reference.regions.get(self.record.region_id)
        return None if found is None else Region.of(found)

"""``Cluster`` (民声云 dispatch unit), the dispatch view's filter, sort and connection, the corrections."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from casework.clusters import Cluster as DomainCluster
from casework.clusters import ClusterPage, ClusterSort, MergeReason
from connectors import UnifiedStatus
from resolvers import clusters as cluster_resolvers
from resolvers import dispatch as dispatch_resolvers
from resolvers.context import GraphContext
from resolvers.ids import decode_id_of, encode_global_id
from schema.dispatch import Assignment, ClusterDispatch
from schema.types import Department, EventCategory, Node, Region, described

if TYPE_CHECKING:
    from schema.cases import Case, PageInfo

__all__ = ["Cluster", "ClusterConnection", "ClusterFilter", "ClusterPayload", "ClusterSortOrder",
           "DispatchSort", "MergeReasonType"]

Info = strawberry.Info[GraphContext, None]
_T = TypeVar("_T")
_SIGNALS = frozenset({"text", "place", "category", "resident", "days"})
CaseRef = Annotated["Case", strawberry.lazy("schema.cases")]
PageInfoRef = Annotated["PageInfo", strawberry.lazy("schema.cases")]


@strawberry.enum(name="DispatchSort", description="Orders of the dispatch view.")
class DispatchSort(Enum):
    NEWEST = "last"
    MOST_REPORTS = "count"
    RISK = "risk"
    DEADLINE = "deadline"


ClusterSortOrder = DispatchSort


@strawberry.type(description="The signals of a merge decision, each 0–1 (place −1: a different place).")
class MergeSignals:
    text: float | None = None
    place: float | None = None
    category: float | None = None
    resident: float | None = None
    days: float | None = strawberry.field(default=None, description="days between the two reports")


@strawberry.type(name="MergeReason", description="Why a case is in its cluster: the match and its scores.")
class MergeReasonType:
    case_id: strawberry.ID
    matched_case_id: strawberry.ID | None = strawberry.field(description="the member it matched best")
    score: float
    signals: MergeSignals
    by: str = strawberry.field(description="auto, or manual:<username> for a dispatcher's decision")
    at: datetime

    @classmethod
    def of(cls, reason: MergeReason) -> MergeReasonType:
        return cls(case_id=strawberry.ID(encode_global_id("Case", reason.case_key)),
                   matched_case_id=None if reason.matched_key is None else strawberry.ID(
                       encode_global_id("Case", reason.matched_key)),
                   score=reason.score, by=reason.by, at=reason.at,
                   signals=MergeSignals(**{k: v for k, v in reason.signals.items() if k in _SIGNALS}))


@strawberry.type(description="One incident as one dispatch unit (民声云): its cases from every channel.")
class Cluster(Node):
    title: str
    status: UnifiedStatus
    first_received_at: datetime
    last_received_at: datetime
    risk: float = strawberry.field(description="0–1: reports, channels, petitions, group matters")
    manual: bool = strawberry.field(description="a dispatcher merged or split it: kept as decided")
    deadline: datetime | None
    overdue: bool
    stored: strawberry.Private[DomainCluster]

    @classmethod
    def of(cls, cluster: DomainCluster) -> Cluster:
        return cls(id=strawberry.ID(encode_global_id("Cluster", cluster.id)), title=cluster.title,
                   status=cluster.status, first_received_at=cluster.first_received_at,
                   last_received_at=cluster.last_received_at, risk=cluster.risk, manual=cluster.manual,
                   deadline=cluster.deadline, overdue=cluster.overdue, stored=cluster)

    @described("where the routing rules send it (分管); the reason is on dispatch.suggestedDepartment")
    def suggested_department(self, info: Info) -> Department | None:
        found = dispatch_resolvers.suggested_department(info.context, self.stored)
        return None if found is None else Department.of(found)

    @described("the open (or last) assignment (派单)")
    async def assignment(self, info: Info) -> Assignment | None:
        record = await dispatch_resolvers.cluster_record(info.context, self.stored.id)
        current = None if record is None else record.current
        return None if current is None else Assignment.of(current)

    @described("dispatch state: assignments, progress, deadline, cards, evaluations")
    async def dispatch(self, info: Info) -> ClusterDispatch | None:
        record = await dispatch_resolvers.cluster_record(info.context, self.stored.id)
        return None if record is None else ClusterDispatch.of(record)

    @described("how many reports (cases) the incident has, all channels")
    def case_count(self) -> int:
        return self.stored.case_count

    @described("the channels it was reported through")
    def channels(self) -> list[str]:
        return list(self.stored.channels)

    @described("its cases you may see, oldest report first: at most `first` (the largest page when not "
               "given; `caseCount` counts them all), those after the case `after` (one of its cases)")
    async def cases(self, info: Info, first: int | None = None,
                    after: strawberry.ID | None = None) -> list[CaseRef]:
        from schema.cases import Case

        after_key = None if after is None else decode_id_of("Case", after)
        found = await cluster_resolvers.cluster_cases(info.context, self.stored, first=first, after=after_key)
        return [Case.of(c) for c in found]

    @strawberry.field
    def category(self, info: Info) -> EventCategory | None:
        found = info.context.resources.reference.categories.get(self.stored.category_id or "")
        return None if found is None else EventCategory.of(found)

    @strawberry.field
    def region(self, info: Info) -> Region | None:
        found = info.context.resources.reference.regions.get(self.stored.region_id or "")
        return None if found is None else Region.of(found)

    @described("why each case is in the cluster, with the scores")
    def merge_reasons(self) -> list[MergeReasonType]:
        return [MergeReasonType.of(r) for r in self.stored.merge_reasons]

    @described("the closed cluster this one is a recurrence of")
    async def recurrence_of(self, info: Info) -> Cluster | None:
        if self.stored.recurrence_of is None:
            return None
        found = await cluster_resolvers.get_cluster(info.context, self.stored.recurrence_of)
        return None if found is None else Cluster.of(found)


@strawberry.input(description="Filters of Query.dispatchView; all given filters must hold.")
class ClusterFilter:
    channels: list[str] | None = strawberry.UNSET
    statuses: list[UnifiedStatus] | None = strawberry.UNSET
    region_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="a Region id; includes everything beneath it")
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="an EventCategory id; includes everything beneath it")
    department_id: strawberry.ID | None = strawberry.UNSET
    text: str | None = strawberry.field(default=strawberry.UNSET, description="words in any member's text")
    overdue: bool | None = strawberry.UNSET
    min_cases: int | None = strawberry.field(default=strawberry.UNSET,
                                             description="at least this many reports")

    def values(self) -> cluster_resolvers.ClusterFilterValues:
        region = _given(self.region_id)
        category = _given(self.category_id)
        department = _given(self.department_id)
        return cluster_resolvers.ClusterFilterValues(
            channels=tuple(_given(self.channels) or ()), statuses=tuple(_given(self.statuses) or ()),
            region_id=None if region is None else decode_id_of("Region", str(region)),
            category_id=None if category is None else decode_id_of("EventCategory", str(category)),
            department_id=None if department is None else decode_id_of("Department", str(department)),
            text=_given(self.text), overdue=_given(self.overdue), min_cases=_given(self.min_cases))


def _given(value: _T | None) -> _T | None:
    return None if value is strawberry.UNSET else value


@strawberry.type
class ClusterEdge:
    cursor: str
    node: Cluster


@strawberry.type(description="A page of the dispatch view (Relay connection).")
class ClusterConnection:
    total_count: int
    page_info: PageInfoRef
    edges: list[ClusterEdge]

    @strawberry.field
    def nodes(self) -> list[Cluster]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: ClusterPage) -> ClusterConnection:
        from schema.cases import PageInfo

        by_id = {c.id: c for c in page.clusters}
        edges = [ClusterEdge(cursor=cursor, node=Cluster.of(by_id[cid]))
                 for cid, cursor in zip(page.ids, page.cursors, strict=True) if cid in by_id]
        return cls(total_count=page.total_count, edges=edges, page_info=PageInfo(
            has_next_page=page.has_next_page, has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None))


@strawberry.type(description="The cluster a correction produced.")
class ClusterPayload:
    cluster: Cluster


def sort_of(sort: DispatchSort | None) -> ClusterSort:
    return ClusterSort((sort or DispatchSort.NEWEST).value)

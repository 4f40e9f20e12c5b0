"""``Case``, its filter and its Relay connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from casework.model import CasePage, CaseQuery, RegionLevel, StoredCase
from connectors import UnifiedStatus
from resolvers import cases as case_resolvers
from resolvers import clusters as cluster_resolvers
from resolvers import dispatch as dispatch_resolvers
from resolvers import reference as reference_resolvers
from resolvers.channels import get_channel
from resolvers.context import GraphContext
from resolvers.ids import decode_id_of, encode_global_id
from resolvers.masking import case_address, mask_free_text
from schema.dispatch import Assignment, ClusterDispatch, Evaluation, WriteBack
from schema.sources import SourceRecord
from schema.types import Channel, EventCategory, Location, Node, Party, Region, described

if TYPE_CHECKING:
    from schema.clusters import Cluster

ClusterRef = Annotated["Cluster", strawberry.lazy("schema.clusters")]

__all__ = ["Case", "CaseConnection", "CaseEdge", "CaseFilter", "PageInfo", "TimelineEntry"]

Info = strawberry.Info[GraphContext, None]
_T = TypeVar("_T")
Reveal = Annotated[bool, strawberry.argument(
    description="read personal data in clear where your role allows it; every such read is audited")]


@strawberry.type(description="One step in a case's history.")
class TimelineEntry:
    at: datetime
    kind: str = strawberry.field(description="RECEIVED, INGESTED, STATUS …")
    description: str
    status: UnifiedStatus | None


@strawberry.federation.type(keys=["id"], description="One ticket of one channel, normalised (一件诉求).")
class Case(Node):
    source_id: str = strawberry.field(description="the channel's own id of the ticket")
    status: UnifiedStatus
    source_status: str = strawberry.field(description="the channel's own status word")
    received_at: datetime
    updated_at: datetime
    stored: strawberry.Private[StoredCase]

    @classmethod
    def of(cls, case: StoredCase) -> Case:
        return cls(id=strawberry.ID(encode_global_id("Case", case.key)), source_id=case.source_id,
                   status=case.status, source_status=case.source_status, received_at=case.received_at,
                   updated_at=case.updated_at, stored=case)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Case | None:
        case = await case_resolvers.get_case(info.context, decode_id_of("Case", id))
        return None if case is None else cls.of(case)

    @strawberry.field
    def title(self) -> str:
        return mask_free_text(self.stored.title)

    @strawberry.field
    def content(self) -> str:
        return mask_free_text(self.stored.content)

    @described("where the problem is, down to the road or estate (house numbers masked unless revealed)")
    def address(self, info: Info, reveal: Reveal = False) -> str | None:
        return case_address(info.context, self.stored, reveal=reveal)

    @strawberry.field
    def channel(self, info: Info) -> Channel:
        ref = get_channel(info.context, self.stored.channel)
        assert ref is not None  # not strict: an unconfigured channel still answers
        return Channel.of(ref)

    @described("事件分类, the most specific entry of the event dictionary")
    def category(self, info: Info) -> EventCategory | None:
        category_id = self.stored.category_id
        categories = info.context.resources.reference.categories
        category = None if category_id is None else categories.get(category_id)
        return None if category is None else EventCategory.of(category)

    @described("the most specific region known (grid, community, street or district)")
    def region(self, info: Info) -> Region | None:
        region_id = self.stored.region_id
        region = None if region_id is None else info.context.resources.reference.regions.get(region_id)
        return None if region is None else Region.of(region)

    @described("the street (街道) the case is in")
    def street(self, info: Info) -> Region | None:
        region = reference_resolvers.region_at_level(info.context, self.stored.region_id, RegionLevel.STREET)
        return None if region is None else Region.of(region)

    @described("the community (社区) the case is in")
    def community(self, info: Info) -> Region | None:
        region_id = self.stored.region_id
        region = reference_resolvers.region_at_level(info.context, region_id, RegionLevel.COMMUNITY)
        return None if region is None else Region.of(region)

    @strawberry.field
    def location(self) -> Location | None:
        if self.stored.lat is None or self.stored.lng is None:
            return None
        return Location(lat=self.stored.lat, lng=self.stored.lng)

    @described("the resident who raised the appeal (masked unless revealed; a petitioner is withheld "
               "from everyone but petition staff)")
    def citizen(self, info: Info, reveal: Reveal = False) -> Party | None:
        party = case_resolvers.case_citizen(info.context, self.stored, reveal=reveal)
        return None if party is None else Party.of(party)

    @described("everyone on the case (masked unless revealed)")
    def parties(self, info: Info, reveal: Reveal = False) -> list[Party]:
        views = case_resolvers.case_parties(info.context, self.stored, reveal=reveal)
        return [Party.of(party) for party in views]

    @strawberry.field
    async def timeline(self, info: Info) -> list[TimelineEntry]:
        entries = await case_resolvers.case_timeline(info.context, self.stored)
        return [TimelineEntry(at=e.at, kind=e.kind, description=e.description, status=e.status)
                for e in entries]

    @described("the incident (民声云 cluster) this case is a report of")
    async def cluster(self, info: Info) -> ClusterRef | None:
        from schema.clusters import Cluster

        found = await cluster_resolvers.case_cluster(info.context, self.stored)
        return None if found is None else Cluster.of(found)

    @described("other reports of the same incident (the cluster's other cases you may see), oldest first: "
               "at most `first` (the largest page when not given), those after the case `after`")
    async def duplicates(self, info: Info, first: int | None = None,
                         after: strawberry.ID | None = None) -> list[Case]:
        after_key = None if after is None else decode_id_of("Case", after)
        found = await cluster_resolvers.case_duplicates(info.context, self.stored, first=first,
                                                        after=after_key)
        return [Case.of(c) for c in found]

    @described("the live record in the channel's own system, fetched on demand (personal fields masked "
               "unless revealed)")
    async def source(self, info: Info, reveal: Reveal = False) -> SourceRecord | None:
        return await case_resolvers.case_source(  # type: ignore[return-value]
            info.context, self.stored, reveal=reveal)

    @described("反馈: every write-back of the dispatch step to this case's own channel, oldest first")
    async def write_backs(self, info: Info) -> list[WriteBack]:
        return [WriteBack.of(d) for d in await dispatch_resolvers.write_backs(info.context, self.stored.key)]

    @described("the dispatch state of this case's cluster: assignment, deadline, cards, evaluations")
    async def dispatch(self, info: Info) -> ClusterDispatch | None:
        record = await dispatch_resolvers.case_record(info.context, self.stored.key)
        return None if record is None else ClusterDispatch.of(record)

    @described("the current (or last) assignment of this case's cluster")
    async def assignment(self, info: Info) -> Assignment | None:
        record = await dispatch_resolvers.case_record(info.context, self.stored.key)
        current = None if record is None else record.current
        return None if current is None else Assignment.of(current)

    @described("the resident's rating of the outcome (评价)")
    async def evaluation(self, info: Info) -> Evaluation | None:
        record = await dispatch_resolvers.case_record(info.context, self.stored.key)
        found = None if record is None else record.evaluations.get(self.stored.key)
        return None if found is None else Evaluation.of(found)


@strawberry.input(description="Filters of Query.cases; all given filters must hold.")
class CaseFilter:
    channels: list[str] | None = strawberry.UNSET
    statuses: list[UnifiedStatus] | None = strawberry.UNSET
    region_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="a Region id; includes everything beneath it")
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="an EventCategory id; includes everything beneath it")
    text: str | None = strawberry.field(default=strawberry.UNSET, description="words in the title or content")
    received_after: datetime | None = strawberry.UNSET
    received_before: datetime | None = strawberry.UNSET

    def to_query(self, ctx: GraphContext) -> CaseQuery:
        return case_resolvers.make_case_query(
            ctx, channels=_given(self.channels), statuses=_given(self.statuses),
            region_id=None if not _given(self.region_id) else decode_id_of("Region", str(self.region_id)),
            category_id=(None if not _given(self.category_id)
                         else decode_id_of("EventCategory", str(self.category_id))),
            text=_given(self.text), received_after=_given(self.received_after),
            received_before=_given(self.received_before))


def _given(value: _T | None) -> _T | None:
    return None if value is strawberry.UNSET else value


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class CaseEdge:
    cursor: str
    node: Case


@strawberry.type(description="A page of cases (Relay connection).")
class CaseConnection:
    total_count: int
    page_info: PageInfo
    edges: list[CaseEdge]

    @strawberry.field
    def nodes(self) -> list[Case]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: CasePage, cursors: list[str]) -> CaseConnection:
        edges = [CaseEdge(cursor=cursor, node=Case.of(case))
                 for case, cursor in zip(page.cases, cursors, strict=True)]
        return cls(total_count=page.total_count, edges=edges, page_info=PageInfo(
            has_next_page=page.has_next_page, has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor, end_cursor=page.end_cursor))

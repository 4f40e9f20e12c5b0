"""The root ``Query`` type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from casework.model import CaseQuery
from resolvers import cases as case_resolvers
from resolvers import channels as channel_resolvers
from resolvers import clusters as cluster_resolvers
from resolvers import reference as reference_resolvers
from resolvers.context import GraphContext
from resolvers.ids import decode_global_id, decode_id_of
from resolvers.nodes import load_node
from schema.cases import Case, CaseConnection, CaseFilter
from schema.clusters import Cluster, ClusterConnection, ClusterFilter, DispatchSort, sort_of
from schema.dispatch_api import DispatchQueries
from schema.types import Channel, Department, EventCategory, Node, QuarantineRecord, Region, Viewer, described

__all__ = ["NODE_TYPES", "Query"]

Info = strawberry.Info[GraphContext, None]

NODE_TYPES: dict[str, Callable[[Any], Node]] = {
    "Case": lambda obj: Case.of(obj),
    "Channel": lambda obj: Channel.of(obj),
    "Region": lambda obj: Region.of(obj),
    "EventCategory": lambda obj: EventCategory.of(obj),
    "Department": lambda obj: Department.of(obj),
    "Cluster": lambda obj: Cluster.of(obj),
}
"""Global-id type name → how to wrap the domain object :func:`resolvers.nodes.load_node` finds."""


@strawberry.type
class Query(DispatchQueries):
    @described("Any object by its global id; null when there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, key = decode_global_id(id)
        wrap = NODE_TYPES.get(type_name)
        if wrap is None:
            return None
        found = await load_node(info.context, type_name, key)
        return None if found is None else wrap(found)

    @described("Who is asking.")
    def me(self, info: Info) -> Viewer:
        return Viewer.of(info.context.viewer)

    @described("The channels of this deployment, with their health.")
    def channels(self, info: Info) -> list[Channel]:
        return [Channel.of(ref) for ref in channel_resolvers.list_channels(info.context)]

    @described("One case by its global id; null when there is none.")
    async def case(self, info: Info, id: strawberry.ID) -> Case | None:
        found = await case_resolvers.get_case(info.context, decode_id_of("Case", id))
        return None if found is None else Case.of(found)

    @described("The cases the viewer may see, newest first, filtered; a Relay connection.")
    async def cases(self, info: Info, filter: CaseFilter | None = None,
                    first: int | None = 20, after: str | None = None) -> CaseConnection:
        query = CaseQuery() if filter is None else filter.to_query(info.context)
        page = await case_resolvers.search_cases(info.context, query, first, after)
        return CaseConnection.of(page, case_resolvers.edge_cursors(info.context, page))

    @described("民声云: the dispatch pool, one entry per incident (cluster), filtered and sorted.")
    async def dispatch_view(self, info: Info, filter: ClusterFilter | None = None, first: int | None = 20,
                            after: str | None = None, sort: DispatchSort | None = None) -> ClusterConnection:
        values = cluster_resolvers.ClusterFilterValues() if filter is None else filter.values()
        page = await cluster_resolvers.dispatch_view(info.context, values, sort_of(sort), first, after)
        return ClusterConnection.of(page)

    @described("One cluster by its global id; null when there is none.")
    async def cluster(self, info: Info, id: strawberry.ID) -> Cluster | None:
        found = await cluster_resolvers.get_cluster(info.context, decode_id_of("Cluster", id))
        return None if found is None else Cluster.of(found)

    @described("The viewer's own appeals across every channel (matched by verified phone or ID number, "
               "never by name); a Relay connection.")
    async def my_cases(self, info: Info, filter: CaseFilter | None = None,
                       first: int | None = 20, after: str | None = None) -> CaseConnection:
        query = CaseQuery() if filter is None else filter.to_query(info.context)
        page = await case_resolvers.my_cases(info.context, query, first, after)
        return CaseConnection.of(page, case_resolvers.edge_cursors(info.context, page))

    @described("Regions beneath parentId; the district when parentId is null.")
    def regions(self, info: Info, parent_id: strawberry.ID | None = None) -> list[Region]:
        parent = None if parent_id is None else decode_id_of("Region", parent_id)
        return [Region.of(region) for region in reference_resolvers.list_regions(info.context, parent)]

    @described("Event categories beneath parentId; the five top classes when null.")
    def categories(self, info: Info, parent_id: strawberry.ID | None = None) -> list[EventCategory]:
        parent = None if parent_id is None else decode_id_of("EventCategory", parent_id)
        return [EventCategory.of(c) for c in reference_resolvers.list_categories(info.context, parent)]

    @strawberry.field
    def departments(self, info: Info) -> list[Department]:
        return [Department.of(d) for d in reference_resolvers.list_departments(info.context)]

    @described("Records that could not be taken in, newest first (operators only).")
    async def quarantine(self, info: Info, channel: str | None = None,
                         first: int = 50) -> list[QuarantineRecord]:
        records = await channel_resolvers.list_quarantine(info.context, channel, first)
        return [QuarantineRecord.of(record) for record in records]

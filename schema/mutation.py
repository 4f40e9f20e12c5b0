"""The root ``Mutation`` type."""

from __future__ import annotations

import strawberry

from resolvers import clusters as cluster_resolvers
from resolvers.context import GraphContext
from resolvers.ids import decode_id_of
from schema.clusters import Cluster, ClusterPayload
from schema.dispatch_api import DispatchMutations
from schema.types import described

__all__ = ["Mutation"]

Info = strawberry.Info[GraphContext, None]


@strawberry.type
class Mutation(DispatchMutations):
    """Every write of the graph; dispatch's family lives in schema.dispatch_api and is inherited."""

    @described("Merge clusters into one (民声云); the result is kept as the dispatcher decided.")
    async def merge_clusters(self, info: Info, ids: list[strawberry.ID]) -> ClusterPayload:
        keys = [decode_id_of("Cluster", i) for i in ids]
        merged = await cluster_resolvers.merge_clusters(info.context, keys)
        return ClusterPayload(cluster=Cluster.of(merged))

    @described("Take a case out of its cluster into a cluster of its own; answers that new cluster.")
    async def split_case(self, info: Info, case_id: strawberry.ID) -> ClusterPayload:
        created = await cluster_resolvers.split_case(info.context, decode_id_of("Case", case_id))
        return ClusterPayload(cluster=Cluster.of(created))

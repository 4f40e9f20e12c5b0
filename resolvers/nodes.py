"""``node(id)``: from a decoded global id to the domain object it names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resolvers.cases import get_case
from resolvers.channels import get_channel
from resolvers.clusters import get_cluster

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["load_node"]


async def load_node(ctx: GraphContext, type_name: str, key: str) -> object | None:
    """The object of type ``type_name`` with ``key``, or ``None`` when there is none (or no such type)."""
    reference = ctx.resources.reference
    if type_name == "Case":
        return await get_case(ctx, key)
    if type_name == "Channel":
        return get_channel(ctx, key, strict=True)
    if type_name == "Region":
        return reference.regions.get(key)
    if type_name == "EventCategory":
        return reference.categories.get(key)
    if type_name == "Cluster" and ctx.resources.clusters is not None:
        return await get_cluster(ctx, key)
    if type_name == "Department":
        return reference.departments.get(key)
    return None

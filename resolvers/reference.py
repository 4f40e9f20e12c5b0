"""Reference data as the graph shows it: regions, the event dictionary, departments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from casework.model import RegionLevel
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from casework.reference import Category, Department, Region
    from resolvers.context import GraphContext

__all__ = ["category_path", "list_categories", "list_departments", "list_regions", "region_at_level"]


def list_regions(ctx: GraphContext, parent_id: str | None) -> list[Region]:
    """The children of ``parent_id``; the top level (the district) when ``None``."""
    reference = ctx.resources.reference
    if parent_id is not None and parent_id not in reference.regions:
        raise BadUserInput(f"no region {parent_id!r}", argument="parentId")
    return list(reference.region_children(parent_id))


def region_at_level(ctx: GraphContext, region_id: str | None, level: RegionLevel) -> Region | None:
    """The region at ``level`` that contains ``region_id`` (itself when it is at that level)."""
    if region_id is None or region_id not in ctx.resources.reference.regions:
        return None
    for region in ctx.resources.reference.region_ancestors(region_id):
        if region.level is level:
            return region
    return None


def list_categories(ctx: GraphContext, parent_id: str | None) -> list[Category]:
    """The children of ``parent_id`` in the event dictionary; the five top classes when ``None``."""
    reference = ctx.resources.reference
    if parent_id is not None and parent_id not in reference.categories:
        raise BadUserInput(f"no category {parent_id!r}", argument="parentId")
    return list(reference.category_children(parent_id))


def category_path(ctx: GraphContext, category_id: str) -> list[Category]:
    """The category's ancestors and itself, top class first."""
    return list(reversed(list(ctx.resources.reference.category_ancestors(category_id))))


def list_departments(ctx: GraphContext) -> list[Department]:
    return list(ctx.resources.reference.departments.values())

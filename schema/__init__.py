"""Floor 4: the GraphQL types and the assembled schema (Federation 2 enabled)."""

from __future__ import annotations

from schema.build import GraphSchema, SchemaOptions, build_schema

__all__ = ["GraphSchema", "SchemaOptions", "build_schema"]

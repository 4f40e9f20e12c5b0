"""The schema snapshot (``schema.graphql``) and the breaking-change check against it.

Clients build against the graph; a removed field, a narrowed type or a new required argument breaks
them. ``schema.graphql`` is the committed contract: a change that graphql-core's
``find_breaking_changes`` calls breaking fails this test unless CHANGELOG.md announces it on a line
starting ``- BREAKING:`` that names the schema coordinate (``Case.title``, ``Query.cases``…).
Additions only drift the snapshot (reported, not failed, so parallel work can land); ``make schema``
rewrites it.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

from graphql import BreakingChange, build_schema, find_breaking_changes, find_dangerous_changes

from gateway.app import installed_connectors
from schema import build_schema as build_graph

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "schema.graphql"
CHANGELOG = ROOT / "CHANGELOG.md"
_FIELD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")


def current_sdl() -> str:
    return build_graph(installed_connectors()).as_str().strip() + "\n"


def announced() -> set[str]:
    """Coordinates announced as breaking in the changelog."""
    lines = CHANGELOG.read_text(encoding="utf-8").splitlines() if CHANGELOG.exists() else []
    found: set[str] = set()
    for line in lines:
        if line.lstrip().startswith("- BREAKING:"):
            found |= set(re.findall(r"`([^`]+)`", line))
    return found


def coordinate(change: BreakingChange) -> str:
    """``Type.field`` where the change names one, else the type (the description's first word)."""
    match = _FIELD.search(change.description)
    return match.group(0) if match else change.description.split(" ", 1)[0]


def unannounced_breaks(old_sdl: str, new_sdl: str, announcements: set[str]) -> list[str]:
    # the federation directives (@link, @key) are not defined in the printed SDL
    changes = find_breaking_changes(build_schema(old_sdl, assume_valid_sdl=True),
                                    build_schema(new_sdl, assume_valid_sdl=True))
    return [f"{c.type.name}: {c.description}" for c in changes if coordinate(c) not in announcements]


def test_no_unannounced_breaking_change() -> None:
    assert SNAPSHOT.exists(), "schema.graphql is missing: run `make schema` and commit it"
    new = current_sdl()
    old = SNAPSHOT.read_text(encoding="utf-8")
    breaks = unannounced_breaks(old, new, announced())
    assert not breaks, ("breaking schema changes not announced in CHANGELOG.md (`- BREAKING:` naming the "
                        "coordinate); announce them, then `make schema`:\n  " + "\n  ".join(breaks))
    if old != new:
        warnings.warn("schema.graphql is behind the schema (additions only): run `make schema`", stacklevel=1)


def test_the_check_catches_a_removed_field_and_a_new_required_argument() -> None:
    old = "type Query { case(id: ID!): Case cases(first: Int): [Case!]! } type Case { id: ID! title: String }"
    new = "type Query { case(id: ID!): Case cases(first: Int, region: ID!): [Case!]! } type Case { id: ID! }"
    breaks = unannounced_breaks(old, new, set())
    assert any("Case.title" in b for b in breaks)
    assert any("region" in b for b in breaks)
    assert unannounced_breaks(old, new, {"Case.title", "Query.cases"}) == []
    assert not find_dangerous_changes(build_schema(old), build_schema(old))


if __name__ == "__main__":  # `make schema`: rewrite the snapshot
    SNAPSHOT.write_text(current_sdl(), encoding="utf-8")
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}", file=sys.stderr)

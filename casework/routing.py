"""Routing rules (data: ``casework/data/routing.yaml``): which department a cluster goes to, at which tier.

:meth:`RoutingRules.suggest` answers a :class:`Route` for a cluster's category, place and size:
the responsible department (分管, from the first matching rule, else from ``departments.yaml``),
the street and community of the place (属地), the tier (community / street / district; major
matters — group petitions, many reports — go to the district) and whether the rule dispatches at
once ("系统自动分拨") or leaves the cluster in the pool for a dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from casework.model import RegionLevel
from casework.reference import Reference
from connectors import ConfigError

__all__ = ["TERRITORIAL", "Route", "RoutingRule", "RoutingRules", "Tier"]

DEFAULT_PATH = Path(__file__).with_name("data") / "routing.yaml"
TERRITORIAL = "territorial"


class Tier(StrEnum):
    COMMUNITY = "COMMUNITY"  # 一般事项：社区当日办结
    STREET = "STREET"  # 超出社区职权：街道或区职能部门
    DISTRICT = "DISTRICT"  # 重大疑难：区级


@dataclass(frozen=True, slots=True)
class RoutingRule:
    name: str
    categories: tuple[str, ...]
    department: str
    tier: Tier
    automatic: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Where a cluster should go, and why."""

    department_id: str | None
    tier: Tier
    automatic: bool
    street_id: str | None
    community_id: str | None
    reason: str


class RoutingRules:
    """The loaded rules over the reference data (departments, regions, categories)."""

    def __init__(
        self,
        reference: Reference,
        rules: Sequence[RoutingRule],
        *,
        default_tier: Tier = Tier.STREET,
        default_automatic: bool = False,
        group_min_people: int = 5,
        major_min_cases: int = 5,
    ) -> None:
        self.reference = reference
        self.rules = tuple(rules)
        self.default_tier = default_tier
        self.default_automatic = default_automatic
        self.group_min_people = group_min_people
        self.major_min_cases = major_min_cases
        self._street_offices = {d.region_id: d.id for d in reference.departments.values() if d.region_id}

    @classmethod
    def load(cls, reference: Reference, path: Path | None = None) -> RoutingRules:
        """Read the rules file (the packaged default when ``path`` is None).

        Raises:
            ConfigError: the file is missing or malformed, or names unknown departments or
                categories; lists every problem found.
        """
        try:
            data = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"routing rules: {exc}"]) from exc
        problems: list[str] = []
        rules = [
            rule
            for i, raw in enumerate(data.get("rules") or [])
            if (rule := _rule(i, raw, reference, problems)) is not None
        ]
        default = data.get("default") or {}
        major = data.get("major") or {}
        tier = _tier(default.get("tier", "STREET"), "default", problems)
        if problems:
            raise ConfigError(problems)
        return cls(
            reference,
            rules,
            default_tier=tier,
            default_automatic=bool(default.get("automatic", False)),
            group_min_people=int(major.get("group_petition_min_people", 5)),
            major_min_cases=int(major.get("min_cases", 5)),
        )

    def suggest(
        self, category_id: str | None, region_id: str | None, *, case_count: int = 1, people: int = 0
    ) -> Route:
        """The route of a cluster: its category, its place, its number of reports and of petitioners."""
        street_id, community_id = self._place(region_id)
        rule = self._rule_for(category_id)
        department: str | None
        if rule is not None:
            department, tier, automatic = rule.department, rule.tier, rule.automatic
            why = f"规则：{rule.name}"
        else:
            department, tier, automatic = (self._department_for(category_id), self.default_tier,
                                           self.default_automatic)
            why = "部门职责（departments.yaml）" if department else "属地（无分管部门）"
            department = department or TERRITORIAL
        if people >= self.group_min_people or case_count >= self.major_min_cases:
            tier, automatic = Tier.DISTRICT, False  # 重大疑难: a person decides, at the district
            why += "；重大疑难（集体访或多次反映）升至区级"
        if department == TERRITORIAL:
            department = self._street_offices.get(street_id) if street_id else None
        return Route(department, tier, automatic and department is not None, street_id, community_id, why)

    def _rule_for(self, category_id: str | None) -> RoutingRule | None:
        if not category_id:
            return None
        return next((r for r in self.rules if any(category_id.startswith(c) for c in r.categories)), None)

    def _department_for(self, category_id: str | None) -> str | None:
        best: tuple[int, str] | None = None
        for department in self.reference.departments.values():
            for code in department.categories:
                if category_id and category_id.startswith(code) and (best is None or len(code) > best[0]):
                    best = (len(code), department.id)
        return best[1] if best else None

    def _place(self, region_id: str | None) -> tuple[str | None, str | None]:
        if not region_id:
            return None, None
        found: Mapping[RegionLevel, str] = {r.level: r.id for r in self.reference.region_ancestors(region_id)}
        return found.get(RegionLevel.STREET), found.get(RegionLevel.COMMUNITY)


def _tier(raw: Any, where: str, problems: list[str]) -> Tier:
    try:
        return Tier(str(raw))
    except ValueError:
        problems.append(f"{where}: tier must be one of {', '.join(Tier)}, got {raw!r}")
        return Tier.STREET


def _rule(index: int, raw: Any, reference: Reference, problems: list[str]) -> RoutingRule | None:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping")
        return None
    name = str(raw.get("name") or where)
    categories = tuple(str(c) for c in raw.get("categories") or ())
    department = str(raw.get("department") or "")
    for code in categories:
        if code not in reference.categories:
            problems.append(f"{where} ({name}): unknown category {code!r}")
    if department != TERRITORIAL and department not in reference.departments:
        problems.append(f"{where} ({name}): unknown department {department!r} (or '{TERRITORIAL}')")
    if not categories:
        problems.append(f"{where} ({name}): no categories")
    tier = _tier(raw.get("tier", "STREET"), where, problems)
    return RoutingRule(name, categories, department, tier, bool(raw.get("automatic", False)))

"""Statistics kept as counters while state changes (一张表), and the risk map (一张图).

Every counted change adds to one field of the hash ``ms:{dx}:cube`` inside the change's MULTI; a
field is ``metric|street|community|department|category|channel|day``. A query reads the cube (its
size grows with the number of distinct combinations, not with the number of cases) and sums the
fields over the requested dimensions. Overdue counts come from the open assignments, scored by
deadline (``ms:{dx}:open``): only work still open is read.

Metrics: ``received`` 受理量, ``dispatched``, ``resolved`` 办结量, ``resolved_on_time``,
``returned``, ``escalated``, ``evaluated``, ``satisfied`` (满意 + 基本满意), ``repeat`` (a report
joining an incident already reported), ``group`` (集体访).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from casework import keys
from casework.model import RegionLevel, StoredCase
from casework.reference import Reference
from casework.workdays import BEIJING

__all__ = ["DIMENSIONS", "METRICS", "Bucket", "Dims", "RegionRisk", "StatsBook", "StatsFilter"]

DIMENSIONS = ("street", "community", "department", "category", "channel", "day")
METRICS = (
    "received",
    "dispatched",
    "resolved",
    "resolved_on_time",
    "returned",
    "escalated",
    "evaluated",
    "satisfied",
    "repeat",
    "group",
)
NONE = "-"


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True, slots=True)
class Dims:
    street: str = NONE
    community: str = NONE
    department: str = NONE
    category: str = NONE
    channel: str = NONE
    day: str = NONE

    def field(self, metric: str) -> str:
        return "|".join(
            (metric, self.street, self.community, self.department, self.category, self.channel, self.day)
        )

    def get(self, dimension: str) -> str:
        return str(getattr(self, dimension))


@dataclass(frozen=True, slots=True)
class StatsFilter:
    """Restricts what is summed; each set given must contain the bucket's value."""

    streets: frozenset[str] | None = None
    communities: frozenset[str] | None = None
    departments: frozenset[str] | None = None
    categories: tuple[str, ...] | None = None  # code prefixes
    channels: frozenset[str] | None = None
    day_from: str | None = None  # ISO dates, inclusive
    day_to: str | None = None
    regions: frozenset[str] | None = None          # a viewer's jurisdiction: street or community ids

    def allows(self, dims: Dims) -> bool:
        if self.regions is not None and not {dims.street, dims.community} & self.regions:
            return False
        checks = (
            (self.streets, dims.street),
            (self.communities, dims.community),
            (self.departments, dims.department),
            (self.channels, dims.channel),
        )
        if any(allowed is not None and value not in allowed for allowed, value in checks):
            return False
        if self.categories is not None and not any(dims.category.startswith(c) for c in self.categories):
            return False
        if self.day_from and dims.day != NONE and dims.day < self.day_from:
            return False
        return not (self.day_to and dims.day != NONE and dims.day > self.day_to)


@dataclass(slots=True)
class Bucket:
    key: dict[str, str]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRICS, 0))
    overdue: int = 0

    def rate(self, numerator: str, denominator: str) -> float | None:
        below = self.counts[denominator]
        return None if below == 0 else round(self.counts[numerator] / below, 4)


@dataclass(frozen=True, slots=True)
class RegionRisk:
    region_id: str
    received: int
    overdue: int
    repeats: int
    group_petitions: int
    score: float
    level: RiskLevel


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StatsBook:
    """Counts changes into the cube and answers ``stats`` and ``riskMap``."""

    def __init__(self, redis: Any, reference: Reference) -> None:
        self.redis = redis
        self.reference = reference

    def dims(self, case: StoredCase, department: str | None, at: datetime) -> Dims:
        street = community = NONE
        if case.region_id:
            for region in self.reference.region_ancestors(case.region_id):
                if region.level is RegionLevel.STREET:
                    street = region.id
                elif region.level is RegionLevel.COMMUNITY:
                    community = region.id
        return Dims(
            street=street,
            community=community,
            department=department or NONE,
            category=(case.category_id or NONE)[:4],
            channel=case.channel,
            day=at.astimezone(BEIJING).date().isoformat(),
        )

    @staticmethod
    def count_in(pipe: Any, metric: str, dims: Dims, amount: int = 1) -> None:
        pipe.hincrby(keys.STATS_CUBE, dims.field(metric), amount)

    @staticmethod
    def open_in(pipe: Any, assignment_id: str, deadline: datetime | None, dims: Iterable[Dims]) -> None:
        """An assignment is open (scored by its deadline; none: never overdue)."""
        score = deadline.timestamp() if deadline else float("inf")
        pipe.zadd(keys.OPEN_ASSIGNMENTS, {assignment_id: score})
        pipe.hset(
            keys.OPEN_ASSIGNMENT_DIMS,
            assignment_id,
            json.dumps([[d.get(n) for n in DIMENSIONS] for d in dims]),
        )

    @staticmethod
    def close_in(pipe: Any, assignment_id: str) -> None:
        pipe.zrem(keys.OPEN_ASSIGNMENTS, assignment_id)
        pipe.hdel(keys.OPEN_ASSIGNMENT_DIMS, assignment_id)
        pipe.hdel(keys.ASSIGNMENT_CARDS, assignment_id)

    async def _cube(self) -> list[tuple[str, Dims, int]]:
        raw: Mapping[Any, Any] = await self.redis.hgetall(keys.STATS_CUBE)
        rows = []
        for name, value in raw.items():
            metric, *parts = _text(name).split("|")
            if len(parts) == len(DIMENSIONS):
                rows.append((metric, Dims(*parts), int(_text(value))))
        return rows

    async def _overdue(self, now: datetime) -> list[Dims]:
        ids = [
            _text(x) for x in await self.redis.zrangebyscore(keys.OPEN_ASSIGNMENTS, "-inf", now.timestamp())
        ]
        if not ids:
            return []
        found = await self.redis.hmget(keys.OPEN_ASSIGNMENT_DIMS, ids)
        return [Dims(*parts) for raw in found if raw is not None for parts in json.loads(_text(raw))]

    async def stats(self, flt: StatsFilter, group_by: Iterable[str], now: datetime) -> list[Bucket]:
        """Buckets over ``group_by`` (a subset of :data:`DIMENSIONS`), sorted by their key."""
        group = [d for d in group_by if d in DIMENSIONS]
        buckets: dict[tuple[str, ...], Bucket] = {}

        def bucket(dims: Dims) -> Bucket:
            key = tuple(dims.get(d) for d in group)
            return buckets.setdefault(key, Bucket(dict(zip(group, key, strict=True))))

        for metric, dims, amount in await self._cube():
            if metric in METRICS and flt.allows(dims):
                bucket(dims).counts[metric] += amount
        for dims in await self._overdue(now):
            if flt.allows(dims):
                bucket(dims).overdue += 1
        return [buckets[k] for k in sorted(buckets)]

    async def risk_map(self, level: RegionLevel, flt: StatsFilter, now: datetime) -> list[RegionRisk]:
        """Per street (or community): a risk score from volume, overdue work, repeats and group petitions."""
        dimension = "street" if level is not RegionLevel.COMMUNITY else "community"
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for bucket in await self.stats(flt, [dimension], now):
            region = bucket.key[dimension]
            if region != NONE:
                counts = totals[region]
                for metric in ("received", "repeat", "group"):
                    counts[metric] += bucket.counts[metric]
                counts["overdue"] += bucket.overdue
        peak = max((c["received"] for c in totals.values()), default=0) or 1
        out = []
        for region, c in sorted(totals.items()):
            score = round(
                min(
                    1.0,
                    0.35 * c["received"] / peak + 0.1 * c["overdue"] + 0.05 * c["repeat"] + 0.25 * c["group"],
                ),
                3,
            )
            level_ = RiskLevel.HIGH if score >= 0.7 else RiskLevel.MEDIUM if score >= 0.35 else RiskLevel.LOW
            out.append(
                RegionRisk(region, c["received"], c["overdue"], c["repeat"], c["group"], score, level_)
            )
        return out

"""The 民声云 cluster record: one dispatch unit, why its cases are in it, and how a case joins it.

Pure data and functions (no Redis): :mod:`casework.clusters` stores these records and
:mod:`casework.clusterbatch` decides which cluster each new case joins.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from casework.dedup import Signature
from casework.events import event_fields
from casework.model import StoredCase
from connectors import UnifiedStatus, utc_now

__all__ = ["CLOSED_STATUSES", "MAX_SIGNATURES", "Cluster", "ClusterConflict", "MergeReason", "add_signature",
           "cluster_event", "first_and_latest", "new_cluster", "with_case", "with_risk"]

_T = TypeVar("_T")

CLOSED_STATUSES = frozenset({UnifiedStatus.CLOSED})
"""A cluster in one of these no longer attracts reports: a later one starts a recurrence."""
MAX_SIGNATURES = 8
MAX_REASONS = 50


class ClusterConflict(Exception):
    """Raised when a correction contradicts the clusters' state (e.g. splitting a cluster's only case)."""


@dataclass(frozen=True, slots=True)
class MergeReason:
    """Why a case is in its cluster: the matched case, the score and its signals, who decided."""

    case_key: str
    matched_key: str | None
    score: float
    signals: dict[str, float]
    by: str                      # "auto", or "manual:<username>"
    at: datetime

    def dump(self) -> dict[str, Any]:
        return {"case": self.case_key, "matched": self.matched_key, "score": round(self.score, 3),
                "signals": self.signals, "by": self.by, "at": self.at.isoformat()}

    @classmethod
    def load(cls, data: dict[str, Any]) -> MergeReason:
        return cls(data["case"], data.get("matched"), float(data["score"]), dict(data.get("signals") or {}),
                   data["by"], _time(data["at"]))


@dataclass(frozen=True, slots=True)
class Cluster:
    """One dispatch unit (民声云): one real-world incident, one or more cases from one or more channels."""

    id: str
    title: str
    category_id: str | None
    region_id: str | None
    status: UnifiedStatus
    case_count: int                        # the keys are a sorted set of their own (keys.cluster_cases)
    channels: tuple[str, ...]
    first_received_at: datetime
    last_received_at: datetime
    risk: float
    merge_reasons: tuple[MergeReason, ...] = ()
    recurrence_of: str | None = None       # the closed cluster this one recurs
    manual: bool = False                   # a dispatcher merged or split it: never re-clustered automatically
    created_at: datetime = field(default_factory=utc_now)
    closed_at: datetime | None = None
    department_id: str | None = None       # set by dispatch
    deadline: datetime | None = None       # set by dispatch
    overdue: bool = False                  # set by dispatch
    head_count: int = 1
    legacy_cases: tuple[str, ...] | None = None
    """The case keys of a record written before they moved to their own sorted set (until written again)."""

    def open_at(self, at: datetime) -> bool:
        """Whether a report received at ``at`` may still join (not closed, or closed after it)."""
        return self.status not in CLOSED_STATUSES or self.closed_at is None or at <= self.closed_at

    def dump(self) -> str:
        return json.dumps({
            "id": self.id, "title": self.title, "category_id": self.category_id, "region_id": self.region_id,
            "status": self.status.value, "count": self.case_count, "channels": list(self.channels),
            "first": self.first_received_at.isoformat(), "last": self.last_received_at.isoformat(),
            "risk": self.risk, "reasons": [r.dump() for r in self.merge_reasons[-MAX_REASONS:]],
            "recurrence_of": self.recurrence_of, "manual": self.manual,
            "created": self.created_at.isoformat(), "closed": _iso(self.closed_at),
            "department_id": self.department_id, "deadline": _iso(self.deadline),
            "overdue": self.overdue, "heads": self.head_count}, ensure_ascii=False)

    @classmethod
    def load(cls, raw: str) -> Cluster:
        d = json.loads(raw)
        legacy = tuple(d["cases"]) if "cases" in d else None
        return cls(id=d["id"], title=d["title"], category_id=d["category_id"], region_id=d["region_id"],
                   status=UnifiedStatus(d["status"]),
                   case_count=len(legacy) if legacy is not None else int(d["count"]), legacy_cases=legacy,
                   channels=tuple(d["channels"]), first_received_at=_time(d["first"]),
                   last_received_at=_time(d["last"]), risk=float(d["risk"]),
                   merge_reasons=tuple(MergeReason.load(r) for r in d.get("reasons", ())),
                   recurrence_of=d.get("recurrence_of"), manual=bool(d.get("manual")),
                   created_at=_time(d["created"]), closed_at=_maybe_time(d.get("closed")),
                   department_id=d.get("department_id"), deadline=_maybe_time(d.get("deadline")),
                   overdue=bool(d.get("overdue")), head_count=int(d.get("heads", 1)))



def cluster_event(cluster: Cluster, sigs: Sequence[dict[str, Any]], *, first: str | None = None,
                  members: Sequence[str] = (), actor: str | None = None, at: datetime | None = None,
                  only_first: bool = False, **detail: str | None) -> dict[str, str]:
    """The event payload of a change of ``cluster`` (the common fields of :func:`event_fields`).

    The cases concerned are ``first`` and then ``members`` (the cluster's every case, when the change
    is about them all), or only ``first`` when the change is about that case alone (``only_first``: a
    case joined). A mass incident's cluster takes thousands of reports, and listing them all in the
    event of each join made every event as big as the cluster (113 KB at 4,000 reports) and the log
    grow with the square of the cluster.
    """
    concerned = [first or ""] if only_first else [first or "", *members]
    fields = event_fields(cases=concerned, cluster=cluster.id,
                          departments=[cluster.department_id or ""], regions=[cluster.region_id],
                          channels=cluster.channels, parties=[w for s in sigs for w in s.get("who", ())],
                          actor=None if actor in (None, "system") else actor, at=at)
    fields.update({name: value for name, value in detail.items() if value is not None})
    return fields


def new_cluster(cluster_id: str, case: StoredCase, recurrence_of: str | None) -> Cluster:
    terminal = case.status in CLOSED_STATUSES
    reason = MergeReason(case.key, None, 1.0, {}, "auto", utc_now())
    return Cluster(id=cluster_id, title=case.title, category_id=case.category_id, region_id=case.region_id,
                   status=case.status if terminal else UnifiedStatus.SUBMITTED, case_count=1,
                   channels=(case.channel,), first_received_at=case.received_at,
                   last_received_at=case.received_at, risk=0.0, merge_reasons=(reason,),
                   recurrence_of=recurrence_of, closed_at=case.updated_at if terminal else None,
                   head_count=_heads(case))


def with_case(cluster: Cluster, case: StoredCase, reason: MergeReason | None) -> Cluster:
    """``cluster`` with ``case`` joined (a case not yet in it: the store adds its key to the case list)."""
    joined = replace(cluster, case_count=cluster.case_count + 1,
                     channels=_inserted(cluster.channels, case.channel),
                     first_received_at=min(cluster.first_received_at, case.received_at),
                     last_received_at=max(cluster.last_received_at, case.received_at),
                     region_id=cluster.region_id or case.region_id,
                     category_id=cluster.category_id or case.category_id,
                     merge_reasons=cluster.merge_reasons + ((reason,) if reason else ()),
                     head_count=max(cluster.head_count, _heads(case)))
    return with_risk(joined)


def _inserted(ordered: tuple[str, ...], value: str) -> tuple[str, ...]:
    """``ordered`` (sorted, distinct) with ``value`` in its place."""
    at = bisect.bisect_left(ordered, value)
    if at < len(ordered) and ordered[at] == value:
        return ordered
    return (*ordered[:at], value, *ordered[at:])


def with_risk(cluster: Cluster) -> Cluster:
    """Risk in [0, 1]: more reports, more channels, a petition, a group matter weigh more (explainable)."""
    risk = (0.12 * min(cluster.case_count - 1, 4) + 0.15 * min(len(cluster.channels) - 1, 2)
            + (0.2 if "petition" in cluster.channels else 0.0) + (0.2 if cluster.head_count > 1 else 0.0))
    return replace(cluster, risk=round(min(risk, 1.0), 3))


def _heads(case: StoredCase) -> int:
    value = case.extra.get("head_count")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1


def add_signature(sigs: list[dict[str, Any]], sig: Signature) -> list[dict[str, Any]]:
    """``sigs`` with ``sig`` added, as :func:`first_and_latest` keeps them."""
    return first_and_latest([*sigs, sig.dump()])


def first_and_latest(members: Sequence[_T]) -> list[_T]:
    """The members' signatures a cluster keeps: the first report's and the latest ones, at most
    :data:`MAX_SIGNATURES` (bounded: a big cluster stays cheap to read and to match against)."""
    if len(members) <= MAX_SIGNATURES:
        return list(members)
    return [members[0], *members[-(MAX_SIGNATURES - 1):]]


def _time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe_time(raw: str | None) -> datetime | None:
    return _time(raw) if raw else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

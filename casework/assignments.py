"""The dispatch record of a cluster and its state machine (pure: no Redis here).

One :class:`DispatchRecord` per cluster holds its lifecycle status, its assignments (one open at
a time; earlier ones returned or done), progress notes, escalation, the residents' evaluations
and a version bumped by every change. The transition functions check the state machine and
raise :class:`InvalidTransition` (a conflict: the cluster is not in a state that allows it) or
:class:`InvalidInput` — they never half-apply: each returns a new record.

Lifecycle (unified statuses)::

    ACCEPTED / RETURNED ──dispatch──▶ DISPATCHED ──sign──▶ SIGNED ──progress──▶ IN_PROGRESS
          ▲                              │                   │                      │
          └──────────return (退单)───────┴───────────────────┘          resolve ◀───┘ (from SIGNED too)
                                                                           │
                                                          RESOLVED ──every member case rated──▶ CLOSED
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from connectors import UnifiedStatus

__all__ = [
    "OPEN_ASSIGNMENT",
    "Assignment",
    "DispatchError",
    "DispatchRecord",
    "Evaluation",
    "InvalidInput",
    "InvalidTransition",
    "Progress",
    "Rating",
    "UnknownObject",
    "assignment_id",
    "split_assignment_id",
]

POOL = frozenset({UnifiedStatus.SUBMITTED, UnifiedStatus.ACCEPTED, UnifiedStatus.RETURNED})
OPEN_ASSIGNMENT = frozenset({UnifiedStatus.DISPATCHED, UnifiedStatus.SIGNED, UnifiedStatus.IN_PROGRESS})
DONE = frozenset({UnifiedStatus.RESOLVED, UnifiedStatus.CLOSED})
MAX_TEXT = 2000


class DispatchError(Exception):
    """Base of what the dispatch step refuses on purpose; ``message`` is meant for the client."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidTransition(DispatchError):
    """The cluster or assignment is not in a state that allows this (someone else acted first)."""


class InvalidInput(DispatchError):
    """The request itself is wrong (unknown department, empty reason, bad rating …)."""


class UnknownObject(DispatchError):
    """No such cluster, assignment, case or whistle."""


class Rating(StrEnum):
    SATISFIED = "SATISFIED"  # 满意
    BASICALLY_SATISFIED = "BASICALLY_SATISFIED"  # 基本满意
    DISSATISFIED = "DISSATISFIED"  # 不满意


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Progress(_Model):
    at: datetime
    actor: str
    message: str
    kind: str = "PROGRESS"  # PROGRESS, SIGNED, RESOLVED, RETURNED, ESCALATED, DISPATCHED


class Assignment(_Model):
    id: str
    cluster_id: str
    department_id: str
    tier: str
    status: UnifiedStatus = UnifiedStatus.DISPATCHED
    dispatched_at: datetime
    dispatched_by: str
    automatic: bool = False
    sign_deadline: datetime | None = None
    deadline: datetime | None = None
    signed_at: datetime | None = None
    resolved_at: datetime | None = None
    returned_at: datetime | None = None
    return_reason: str | None = None
    note: str = ""

    @property
    def open(self) -> bool:
        return self.status in OPEN_ASSIGNMENT


class Evaluation(_Model):
    case_key: str
    rating: Rating
    comment: str = ""
    at: datetime
    by: str
    reported_by_channel: bool = False


class DispatchRecord(_Model):
    cluster_id: str
    status: UnifiedStatus = UnifiedStatus.ACCEPTED
    version: int = 0
    assignments: list[Assignment] = Field(default_factory=list)
    progress: list[Progress] = Field(default_factory=list)
    returns: int = 0
    escalated: bool = False
    escalation_reason: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    evaluations: dict[str, Evaluation] = Field(default_factory=dict)
    members: list[str] = Field(default_factory=list)  # member case keys at the last change

    @property
    def current(self) -> Assignment | None:
        """The open assignment, or the last one when none is open."""
        return self.assignments[-1] if self.assignments else None

    def assignment(self, assignment_id: str) -> Assignment:
        for found in self.assignments:
            if found.id == assignment_id:
                return found
        raise UnknownObject(f"no assignment {assignment_id!r}")

    def changed(self, **fields: object) -> DispatchRecord:
        return self.model_copy(update={**fields, "version": self.version + 1})

    # -- transitions ---------------------------------------------------------------------------

    def dispatch(self, new: Assignment, note: Progress) -> DispatchRecord:
        if self.status not in POOL:
            raise InvalidTransition(
                f"the cluster is {self.status.value}, not in the pool: already dispatched"
            )
        return self.changed(
            status=UnifiedStatus.DISPATCHED,
            assignments=[*self.assignments, new],
            progress=[*self.progress, note],
        )

    def _open(self, assignment_id: str, allowed: frozenset[UnifiedStatus], doing: str) -> Assignment:
        found = self.assignment(assignment_id)
        if found.status not in allowed:
            raise InvalidTransition(f"cannot {doing}: the assignment is {found.status.value}")
        return found

    def _replace(
        self, updated: Assignment, status: UnifiedStatus, note: Progress, **fields: object
    ) -> DispatchRecord:
        assignments = [updated if a.id == updated.id else a for a in self.assignments]
        return self.changed(status=status, assignments=assignments, progress=[*self.progress, note], **fields)

    def sign(self, assignment_id: str, note: Progress) -> DispatchRecord:
        found = self._open(assignment_id, frozenset({UnifiedStatus.DISPATCHED}), "sign")
        updated = found.model_copy(update={"status": UnifiedStatus.SIGNED, "signed_at": note.at})
        return self._replace(updated, UnifiedStatus.SIGNED, note)

    def add_progress(self, assignment_id: str, note: Progress) -> DispatchRecord:
        found = self._open(
            assignment_id,
            frozenset({UnifiedStatus.SIGNED, UnifiedStatus.IN_PROGRESS}),
            "report progress before signing",
        )
        updated = found.model_copy(update={"status": UnifiedStatus.IN_PROGRESS})
        return self._replace(updated, UnifiedStatus.IN_PROGRESS, note)

    def give_back(self, assignment_id: str, note: Progress) -> DispatchRecord:
        found = self._open(
            assignment_id, frozenset({UnifiedStatus.DISPATCHED, UnifiedStatus.SIGNED}), "return"
        )
        updated = found.model_copy(
            update={"status": UnifiedStatus.RETURNED, "returned_at": note.at, "return_reason": note.message}
        )
        return self._replace(updated, UnifiedStatus.RETURNED, note, returns=self.returns + 1)

    def resolve(self, note: Progress) -> DispatchRecord:
        current = self.current
        if current is None or current.status not in {UnifiedStatus.SIGNED, UnifiedStatus.IN_PROGRESS}:
            raise InvalidTransition(f"cannot resolve: the cluster is {self.status.value} (sign it first)")
        updated = current.model_copy(update={"status": UnifiedStatus.RESOLVED, "resolved_at": note.at})
        return self._replace(
            updated, UnifiedStatus.RESOLVED, note, resolved_at=note.at, resolution=note.message
        )

    def escalate(self, note: Progress) -> DispatchRecord:
        if self.status in DONE:
            raise InvalidTransition(f"cannot escalate: the cluster is {self.status.value}")
        return self.changed(escalated=True, escalation_reason=note.message, progress=[*self.progress, note])

    def evaluate(self, evaluation: Evaluation) -> DispatchRecord:
        if self.status not in DONE:
            raise InvalidTransition(f"cannot rate before the cluster is resolved (it is {self.status.value})")
        if evaluation.case_key in self.evaluations:
            raise InvalidTransition("this case was already rated")
        evaluations = {**self.evaluations, evaluation.case_key: evaluation}
        closed = bool(self.members) and all(key in evaluations for key in self.members)
        return self.changed(evaluations=evaluations, status=UnifiedStatus.CLOSED if closed else self.status)


def assignment_id(cluster_id: str, number: int) -> str:
    """Assignments are numbered within their cluster: ``<cluster id>#<n>``."""
    return f"{cluster_id}#{number}"


def split_assignment_id(value: str) -> tuple[str, int]:
    cluster_id, sep, number = value.rpartition("#")
    if not sep or not cluster_id or not number.isdigit():
        raise InvalidInput(f"not an assignment id: {value[:80]!r}")
    return cluster_id, int(number)

"""Dispatch: the closed loop 受理 → 分拨 → 签收 → 办理 → 办结 → 反馈 → 评价, one cluster at a time.

Every operation of :class:`Dispatcher` is one optimistic transaction on the cluster's dispatch
record (``WATCH`` the record and the cluster, read, check the state machine of
:mod:`casework.assignments`, then one ``MULTI``): the new record, the cluster's status through the
cluster store, exactly one event, the write-backs to every member case's channel (the outbox),
the statistics counters and the open-assignment index. Two dispatchers acting on one cluster at
once: the second one's ``EXEC`` fails, it reads again, and the state machine refuses it
(:class:`~casework.assignments.InvalidTransition`, a conflict) — nothing is half-applied.

Rights are checked above (resolvers); this module trusts its caller about *who* may act.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import WatchError

from casework import keys
from casework.access import link_department_in, unlink_department_in
from casework.assignments import (
    Assignment,
    DispatchRecord,
    Evaluation,
    InvalidInput,
    Progress,
    Rating,
    UnknownObject,
    assignment_id,
    split_assignment_id,
)
from casework.clusterbook import ClusterBook, ClusterView
from casework.deadlines import DeadlinePolicies, Timing, timing
from casework.events import (
    ASSIGNMENT_DISPATCHED,
    ASSIGNMENT_PROGRESSED,
    ASSIGNMENT_RESOLVED,
    ASSIGNMENT_RETURNED,
    ASSIGNMENT_SIGNED,
    CLUSTER_ESCALATED,
    EVALUATION_ADDED,
    EventLog,
    event_fields,
)
from casework.model import StoredCase
from casework.outbox import Delivery, delivery_id, enqueue_in
from casework.reference import Reference
from casework.routing import Route, RoutingRules, Tier
from casework.stats import StatsBook
from casework.store import CaseStore
from casework.workdays import Clock, system_clock
from connectors import UnifiedStatus, WriteBackKind

__all__ = ["Change", "Dispatcher"]

MAX_RETRIES = 50
MAX_TEXT = 2000
_FRESH = frozenset({UnifiedStatus.SUBMITTED, UnifiedStatus.RETURNED})


@dataclass(frozen=True, slots=True)
class Change:
    """One operation: how it changes the record, its event, and what each member case's channel hears."""

    event: str
    apply: Callable[[DispatchRecord, ClusterView], DispatchRecord]
    actor: str
    message: str = ""
    write_back: WriteBackKind | None = None
    metric: str | None = None
    case_key: str | None = None  # an operation on one member case (evaluation)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _clean(text: str | None, what: str, *, required: bool = False) -> str:
    value = (text or "").strip()
    if required and not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} is longer than {MAX_TEXT} characters")
    return value


class Dispatcher:
    """Dispatch, supervision and feedback over Redis.

    Args:
        redis: the gateway's Redis.
        store: the case store (member cases: channel, source id, place, category).
        clusters: the cluster store's view for dispatch (:mod:`casework.clusterbook`).
        routing, policies: the routing rules and deadline policies (data files).
        events: the event log.
        writable: channel keys whose connector accepts write-back (the others are not queued).
        clock: answers now (tests move it).
    """

    def __init__(
        self,
        redis: Any,
        store: CaseStore,
        clusters: ClusterBook,
        routing: RoutingRules,
        policies: DeadlinePolicies,
        events: EventLog,
        *,
        writable: Container[str] = frozenset(),
        clock: Clock = system_clock,
    ) -> None:
        self.redis = redis
        self.store = store
        self.clusters = clusters
        self.routing = routing
        self.policies = policies
        self.events = events
        self.writable = writable
        self.clock = clock
        self.stats = StatsBook(redis, store.reference)

    @property
    def reference(self) -> Reference:
        return self.store.reference

    # -- reading -------------------------------------------------------------------------------

    async def record(self, cluster_id: str) -> DispatchRecord:
        """The cluster's dispatch record (a fresh ACCEPTED one when nothing happened yet)."""
        return _load(cluster_id, _text(await self.redis.hget(keys.dispatch_record(cluster_id), "doc")))

    async def records(self, cluster_ids: Sequence[str]) -> list[DispatchRecord]:
        if not cluster_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cluster_id in cluster_ids:
                pipe.hget(keys.dispatch_record(cluster_id), "doc")
            docs = await pipe.execute()
        return [_load(c, _text(d)) for c, d in zip(cluster_ids, docs, strict=True)]

    async def cluster(self, cluster_id: str) -> ClusterView:
        found = await self.clusters.load(self.redis, cluster_id)
        if found is None:
            raise UnknownObject(f"no cluster {cluster_id!r}")
        return found

    def suggest(self, cluster: ClusterView) -> Route:
        return self.routing.suggest(
            cluster.category_id, cluster.region_id, case_count=cluster.case_count, people=cluster.head_count
        )

    def timing(self, record: DispatchRecord) -> Timing:
        """Deadline, overdue, near due and card of the cluster's current assignment."""
        current = record.current
        now = self.clock()
        if current is None or not current.open:
            done = current is not None and current.status is UnifiedStatus.RESOLVED
            start = current.dispatched_at if current else now
            deadline = current.deadline if current else None
            return timing(
                start,
                deadline,
                (current.resolved_at or now) if done and current else now,
                self.policies,
                0 if done else record.returns,
            )
        if (
            current.status is UnifiedStatus.DISPATCHED
            and current.sign_deadline
            and current.sign_deadline < now
        ):
            return timing(current.dispatched_at, current.sign_deadline, now, self.policies, record.returns)
        return timing(current.dispatched_at, current.deadline, now, self.policies, record.returns)

    # -- the operations ------------------------------------------------------------------------

    async def dispatch(
        self,
        cluster_id: str,
        actor: str,
        *,
        department_id: str | None = None,
        tier: Tier | None = None,
        note: str = "",
        automatic: bool = False,
    ) -> DispatchRecord:
        """分拨 to ``department_id`` (None: the suggestion), with its deadlines; only from the pool."""
        note = _clean(note, "note")
        if department_id is not None and department_id not in self.reference.departments:
            raise InvalidInput(f"unknown department {department_id!r}")

        def apply(record: DispatchRecord, cluster: ClusterView) -> DispatchRecord:
            route = self.suggest(cluster)
            department = department_id or route.department_id
            if department is None:
                raise InvalidInput("no department given and the routing rules suggest none")
            level = tier or route.tier
            now = self.clock()
            new = Assignment(
                id=assignment_id(cluster.id, len(record.assignments) + 1),
                cluster_id=cluster.id,
                department_id=department,
                tier=level.value,
                dispatched_at=now,
                dispatched_by=actor,
                automatic=automatic,
                note=note or route.reason,
                sign_deadline=self.policies.deadline(cluster.channels, "sign", now),
                deadline=self.policies.deadline(cluster.channels, "handle", now, level.value),
            )
            what = "系统自动分拨" if automatic else "分拨"
            return record.dispatch(
                new,
                Progress(at=now, actor=actor, kind="DISPATCHED", message=f"{what}至{self._name(department)}"),
            )

        return await self._change(
            cluster_id,
            Change(ASSIGNMENT_DISPATCHED, apply, actor, write_back=WriteBackKind.SIGN, metric="dispatched"),
        )

    async def sign(self, assignment_id_: str, actor: str) -> DispatchRecord:
        """签收 by the assigned department."""
        cluster_id, _ = split_assignment_id(assignment_id_)
        return await self._change(
            cluster_id,
            Change(
                ASSIGNMENT_SIGNED,
                lambda r, c: r.sign(assignment_id_, self._note(actor, "SIGNED", r, assignment_id_)),
                actor,
                write_back=WriteBackKind.REPLY,
            ),
        )

    async def add_progress(self, assignment_id_: str, actor: str, message: str) -> DispatchRecord:
        text = _clean(message, "message", required=True)
        cluster_id, _ = split_assignment_id(assignment_id_)
        return await self._change(
            cluster_id,
            Change(
                ASSIGNMENT_PROGRESSED,
                lambda r, c: r.add_progress(
                    assignment_id_, Progress(at=self.clock(), actor=actor, message=text)
                ),
                actor,
                message=text,
                write_back=WriteBackKind.REPLY,
            ),
        )

    async def give_back(self, assignment_id_: str, actor: str, reason: str) -> DispatchRecord:
        """退单: the department says it is not theirs; the cluster goes back to the pool."""
        text = _clean(reason, "reason", required=True)
        cluster_id, _ = split_assignment_id(assignment_id_)
        return await self._change(
            cluster_id,
            Change(
                ASSIGNMENT_RETURNED,
                lambda r, c: r.give_back(
                    assignment_id_, Progress(at=self.clock(), actor=actor, kind="RETURNED", message=text)
                ),
                actor,
                message=f"退单：{text}（重新分拨中）",
                write_back=WriteBackKind.RETURN,
                metric="returned",
            ),
        )

    async def resolve(self, cluster_id: str, actor: str, resolution: str) -> DispatchRecord:
        text = _clean(resolution, "resolution", required=True)
        return await self._change(
            cluster_id,
            Change(
                ASSIGNMENT_RESOLVED,
                lambda r, c: r.resolve(Progress(at=self.clock(), actor=actor, kind="RESOLVED", message=text)),
                actor,
                message=f"已办结：{text}",
                write_back=WriteBackKind.RESOLVE,
                metric="resolved",
            ),
        )

    async def escalate(self, cluster_id: str, actor: str, reason: str) -> DispatchRecord:
        text = _clean(reason, "reason", required=True)
        return await self._change(
            cluster_id,
            Change(
                CLUSTER_ESCALATED,
                lambda r, c: r.escalate(
                    Progress(at=self.clock(), actor=actor, kind="ESCALATED", message=text)
                ),
                actor,
                message=f"已升级督办：{text}",
                write_back=WriteBackKind.REPLY,
                metric="escalated",
            ),
        )

    async def evaluate(
        self, case_key: str, actor: str, rating: Rating, comment: str = "", *, by_channel: bool = False
    ) -> DispatchRecord:
        """A rating of a resolved case (the resident's, or the channel's); the last one closes the cluster."""
        text = _clean(comment, "comment")
        cluster_id = await self.clusters.cluster_of(case_key)
        if cluster_id is None:
            raise UnknownObject(f"no case {case_key!r}")
        evaluation = Evaluation(
            case_key=case_key,
            rating=rating,
            comment=text,
            at=self.clock(),
            by=actor,
            reported_by_channel=by_channel,
        )
        return await self._change(
            cluster_id,
            Change(
                EVALUATION_ADDED,
                lambda r, c: r.evaluate(evaluation),
                actor,
                metric="evaluated",
                case_key=case_key,
            ),
        )

    # -- the transaction -----------------------------------------------------------------------

    async def _change(self, cluster_id: str, change: Change) -> DispatchRecord:
        key = keys.dispatch_record(cluster_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(key, *self.clusters.watch_keys(cluster_id))
                    cluster = await self.clusters.load(pipe, cluster_id)
                    if cluster is None:
                        raise UnknownObject(f"no cluster {cluster_id!r}")
                    old = _load(cluster_id, _text(await pipe.hget(key, "doc")))
                    new = change.apply(old, cluster).model_copy(update={"members": list(cluster.members)})
                    cases = [c for c in await self.store.get_many(list(cluster.members)) if c is not None]
                    pipe.multi()
                    self._write(pipe, change, old, new, cluster, cases)
                    await pipe.execute()
                    return new
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(
            f"cluster {cluster_id!r} kept changing under us; gave up after {MAX_RETRIES} tries"
        )

    def _write(
        self,
        pipe: Any,
        change: Change,
        old: DispatchRecord,
        new: DispatchRecord,
        cluster: ClusterView,
        cases: list[StoredCase],
    ) -> None:
        now = self.clock()
        pipe.hset(keys.dispatch_record(cluster.id), mapping={"doc": new.model_dump_json(), "v": new.version})
        current = new.current
        state = self.timing(new)
        self.clusters.update_in(
            pipe,
            cluster,
            status=new.status,
            by=change.actor,
            at=now,
            overdue=state.overdue,
            department_id=current.department_id if current and current.open else None,
            deadline=current.deadline if current and current.open else None,
        )
        touched = {a.department_id for a in (old.current, current) if a is not None}
        self.events.append_in(
            pipe,
            change.event,
            event_fields(
                cases=[change.case_key] if change.case_key else cluster.members,
                cluster=cluster.id,
                departments=sorted(touched),
                regions=[c.region_id for c in cases],
                channels=cluster.channels,
                parties=[h for c in cases for h in self.store.appellant_hashes(c)],
                actor=change.actor,
                at=now,
                status=new.status.value,
                previous=old.status.value,
                assignment=current.id if current else None,
                version=str(new.version),
            ),
        )
        self._link(pipe, change, old, new, cases)
        if change.write_back is not None:
            enqueue_in(pipe, self._deliveries(change, new, cases, now), now)
        self._count(pipe, change, old, new, cases, now)

    @staticmethod
    def _link(pipe: Any, change: Change, old: DispatchRecord, new: DispatchRecord,
              cases: list[StoredCase]) -> None:
        """The assigned department may see the cluster's cases; one that returned it no longer may."""
        if change.event == ASSIGNMENT_DISPATCHED and new.current is not None:
            for case in cases:
                link_department_in(pipe, case.key, new.current.department_id)
        elif change.event == ASSIGNMENT_RETURNED and old.current is not None:
            for case in cases:
                unlink_department_in(pipe, case.key, old.current.department_id)

    def _deliveries(
        self, change: Change, record: DispatchRecord, cases: list[StoredCase], now: datetime
    ) -> list[Delivery]:
        current = record.current
        department = current.department_id if current else None
        message = change.message or (record.progress[-1].message if record.progress else "")
        out = []
        for case in cases:
            if case.channel not in self.writable or change.write_back is None:
                continue
            kind = change.write_back
            if kind is WriteBackKind.SIGN and case.status not in _FRESH:
                kind = WriteBackKind.REPLY  # the channel already accepted it: tell it where it went instead
            out.append(
                Delivery(
                    id=delivery_id(record.cluster_id, record.version, case.key),
                    case_key=case.key,
                    channel=case.channel,
                    source_id=case.source_id,
                    kind=kind,
                    message=message,
                    actor=change.actor,
                    department=self._name(department) if department else None,
                    event=change.event,
                    created_at=now,
                )
            )
        return out

    def _count(
        self,
        pipe: Any,
        change: Change,
        old: DispatchRecord,
        new: DispatchRecord,
        cases: list[StoredCase],
        now: datetime,
    ) -> None:
        current = new.current
        department = current.department_id if current else None
        dims = [self.stats.dims(case, department, now) for case in cases]
        if current is not None and current.open:
            self.stats.open_in(pipe, current.id, self.timing(new).deadline, dims)
        for previous in old.assignments:
            if previous.open and not (current and current.id == previous.id and current.open):
                self.stats.close_in(pipe, previous.id)
        if change.metric == "evaluated":
            evaluation = new.evaluations[change.case_key or ""]
            for case, case_dims in zip(cases, dims, strict=True):
                if case.key == change.case_key:
                    self.stats.count_in(pipe, "evaluated", case_dims)
                    if evaluation.rating is not Rating.DISSATISFIED:
                        self.stats.count_in(pipe, "satisfied", case_dims)
            return
        if change.metric is None:
            return
        on_time = (
            change.metric == "resolved"
            and current is not None
            and (current.deadline is None or now <= current.deadline)
        )
        for case_dims in dims:
            self.stats.count_in(pipe, change.metric, case_dims)
            if on_time:
                self.stats.count_in(pipe, "resolved_on_time", case_dims)

    def _note(self, actor: str, kind: str, record: DispatchRecord, assignment_id_: str) -> Progress:
        department = record.assignment(assignment_id_).department_id
        return Progress(at=self.clock(), actor=actor, kind=kind, message=f"{self._name(department)}已签收")

    def _name(self, department_id: str | None) -> str:
        found = self.reference.departments.get(department_id or "")
        return found.short_name if found else (department_id or "")


def _load(cluster_id: str, raw: str | None) -> DispatchRecord:
    if raw is None:
        return DispatchRecord(cluster_id=cluster_id)
    return DispatchRecord.model_validate_json(raw)

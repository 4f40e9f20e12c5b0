"""社区吹哨·部门报到: numbered whistle orders summoning departments to a place and time.

A community (or street, or the district) issues a :class:`Whistle` — ``光明吹哨〔2026〕12号`` — naming
the departments to report (报到) at a place by a time, usually about one cluster. Each department
reports once; one that has not reported by the time, or reported after it, is flagged ``late``.
Issuing and each report are one ``MULTI`` with their event; summoned departments may then see the
cluster's cases (the rights policy's "summoned" departments, through ``link``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import WatchError

from casework import keys
from casework.assignments import InvalidInput, InvalidTransition, UnknownObject
from casework.events import WHISTLE_ISSUED, WHISTLE_REPORTED, EventLog, event_fields
from casework.reference import Reference
from casework.workdays import BEIJING, Clock, system_clock

__all__ = ["Summons", "Whistle", "WhistleBook"]

MAX_DEPARTMENTS = 20
MAX_RETRIES = 50

Link = Callable[[Any, str, str], None]
"""``link(pipe, case_key, department_id)``: queue that a department may now see a case."""


class Summons(BaseModel):
    model_config = ConfigDict(extra="ignore")

    department_id: str
    reported_at: datetime | None = None
    reported_by: str | None = None

    def late(self, due: datetime, now: datetime) -> bool:
        return self.reported_at > due if self.reported_at else now > due


class Whistle(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: str  # 光明吹哨〔2026〕12号
    sequence: int
    cluster_id: str | None
    region_id: str | None
    place: str
    report_by: datetime
    summary: str
    issued_by: str
    issued_at: datetime
    summons: list[Summons] = Field(default_factory=list)

    def summoned(self, department_id: str) -> Summons:
        for item in self.summons:
            if item.department_id == department_id:
                return item
        raise InvalidInput(f"{department_id!r} is not summoned by {self.number}")


class WhistleBook:
    """Issues whistle orders and records reports."""

    def __init__(
        self,
        redis: Any,
        reference: Reference,
        events: EventLog,
        *,
        clock: Clock = system_clock,
        prefix: str = "光明吹哨",
        link: Link | None = None,
    ) -> None:
        self.redis = redis
        self.reference = reference
        self.events = events
        self.clock = clock
        self.prefix = prefix
        self.link = link

    async def issue(
        self,
        *,
        departments: Sequence[str],
        place: str,
        report_by: datetime,
        summary: str,
        actor: str,
        cluster_id: str | None = None,
        region_id: str | None = None,
        members: Sequence[str] = (),
    ) -> Whistle:
        """A new numbered whistle order; ``members`` are the cluster's case keys (summoned may see them)."""
        wanted = list(dict.fromkeys(departments))
        unknown = [d for d in wanted if d not in self.reference.departments]
        if not wanted or len(wanted) > MAX_DEPARTMENTS or unknown:
            raise InvalidInput(f"summon 1 to {MAX_DEPARTMENTS} known departments (unknown: {unknown})")
        if not place.strip() or not summary.strip():
            raise InvalidInput("a whistle needs a place and a summary")
        now = self.clock()
        if report_by <= now:
            raise InvalidInput("the report time must be in the future")
        sequence = int(await self.redis.incr(keys.WHISTLE_SEQUENCE))
        year = now.astimezone(BEIJING).year
        whistle = Whistle(
            number=f"{self.prefix}〔{year}〕{sequence}号",
            sequence=sequence,
            cluster_id=cluster_id,
            region_id=region_id,
            place=place.strip()[:200],
            report_by=report_by,
            summary=summary.strip()[:2000],
            issued_by=actor,
            issued_at=now,
            summons=[Summons(department_id=d) for d in wanted],
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.whistle(str(sequence)), "doc", whistle.model_dump_json())
            pipe.zadd(keys.WHISTLES, {str(sequence): report_by.timestamp()})
            for case_key in members:
                for department in wanted:
                    if self.link is not None:
                        self.link(pipe, case_key, department)
            self.events.append_in(
                pipe,
                WHISTLE_ISSUED,
                event_fields(
                    cases=members,
                    cluster=cluster_id,
                    departments=wanted,
                    regions=[region_id],
                    actor=actor,
                    at=now,
                    whistle=str(sequence),
                    number=whistle.number,
                ),
            )
            await pipe.execute()
        return whistle

    async def get(self, sequence: str) -> Whistle | None:
        raw = await self.redis.hget(keys.whistle(sequence), "doc")
        if raw is None:
            return None
        return Whistle.model_validate_json(raw.decode() if isinstance(raw, bytes) else raw)

    async def report(self, sequence: str, department_id: str, actor: str) -> Whistle:
        """报到: the department has arrived; a second report is a conflict."""
        key = keys.whistle(sequence)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, "doc")
                    if raw is None:
                        raise UnknownObject(f"no whistle {sequence!r}")
                    whistle = Whistle.model_validate_json(raw.decode() if isinstance(raw, bytes) else raw)
                    summons = whistle.summoned(department_id)
                    if summons.reported_at is not None:
                        raise InvalidTransition(f"{department_id} already reported to {whistle.number}")
                    now = self.clock()
                    summons.reported_at, summons.reported_by = now, actor
                    pipe.multi()
                    pipe.hset(key, "doc", whistle.model_dump_json())
                    self.events.append_in(
                        pipe,
                        WHISTLE_REPORTED,
                        event_fields(
                            cluster=whistle.cluster_id,
                            departments=[department_id],
                            regions=[whistle.region_id],
                            actor=actor,
                            at=now,
                            whistle=sequence,
                            number=whistle.number,
                            late="1" if summons.late(whistle.report_by, now) else "0",
                        ),
                    )
                    await pipe.execute()
                    return whistle
                except WatchError:
                    await pipe.reset()
        raise RuntimeError(f"whistle {sequence!r} kept changing; gave up")

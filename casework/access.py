"""Who a case concerns, as the rights policy needs it: departments and the units a petition names.

A department sees the cases assigned or summoned (吹哨) to it. Whoever assigns or summons writes
that here, inside the same ``MULTI`` as the assignment and its event::

    async with redis.pipeline(transaction=True) as pipe:
        ...                                   # the assignment itself
        link_department_in(pipe, case_key, "dept-labor")
        events.append_in(pipe, ...)
        await pipe.execute()

Both sides are kept: the department's index (``keys.department_index``: what list queries filter
on, in the store) and the case's own set (``keys.case_departments``: what one case's rights are
checked against). A petition complaining about a department (its 被反映人 is that unit) is indexed
under ``keys.petition_against_index`` at ingest, so that department never sees it, whatever it is
assigned (信访工作条例 art. 30).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from auth.rights import PETITION_CHANNELS, is_respondent_role
from casework import keys
from casework.reference import Reference
from connectors import Party

__all__ = ["departments_of", "link_department_in", "respondent_departments", "unlink_department_in"]


def link_department_in(pipe: Any, case_key: str, department_id: str) -> None:
    """Queue: ``department_id`` may now see ``case_key`` (assigned or summoned to it)."""
    pipe.sadd(keys.department_index(department_id), case_key)
    pipe.sadd(keys.case_departments(case_key), department_id)
    pipe.incr(keys.GENERATION)  # cached search results of department viewers are stale now


def unlink_department_in(pipe: Any, case_key: str, department_id: str) -> None:
    """Queue: ``department_id`` no longer sees ``case_key`` (returned, reassigned)."""
    pipe.srem(keys.department_index(department_id), case_key)
    pipe.srem(keys.case_departments(case_key), department_id)
    pipe.incr(keys.GENERATION)


async def departments_of(redis: Any, case_keys: Sequence[str]) -> list[frozenset[str]]:
    """The departments each case is assigned or summoned to, in one pipelined round trip."""
    if not case_keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in case_keys:
            pipe.smembers(keys.case_departments(key))
        answers = await pipe.execute()
    return [frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members) for members in answers]


def respondent_departments(reference: Reference, channel: str, parties: Iterable[Party]) -> frozenset[str]:
    """Departments a petition complains about: respondent organisations named like a department."""
    if channel not in PETITION_CHANNELS:
        return frozenset()
    names = {name: department.id for department in reference.departments.values()
             for name in (department.name, department.short_name) if name}
    named = (party.name.strip() for party in parties if is_respondent_role(party.role) and party.name)
    return frozenset(names[name] for name in named if name in names)

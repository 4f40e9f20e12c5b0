"""Routing rules, deadline policies, the working-day calendar and cards (pure, no Redis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from casework.deadlines import Card, DeadlinePolicies, timing
from casework.reference import Reference
from casework.routing import RoutingRules, Tier
from casework.workdays import BEIJING, MovableClock, WorkCalendar
from connectors import ConfigError


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture(scope="module")
def policies() -> DeadlinePolicies:
    return DeadlinePolicies.load()


def beijing(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BEIJING)  # type: ignore[misc]


def test_china_holidays_and_make_up_days_count() -> None:
    calendar = WorkCalendar()
    assert not calendar.is_workday(date(2026, 10, 1))  # 国庆
    assert calendar.is_workday(date(2026, 10, 10))  # a Saturday made a working day (调休)
    assert not calendar.is_workday(date(2026, 10, 11))  # an ordinary Sunday
    assert calendar.covers(2026)


def test_a_year_the_library_does_not_know_falls_back_to_weekdays() -> None:
    calendar = WorkCalendar()
    assert not calendar.covers(2099)
    assert calendar.is_workday(date(2099, 1, 5))  # a Monday
    assert not calendar.is_workday(date(2099, 1, 3))  # a Saturday


def test_five_working_days_across_national_day(policies: DeadlinePolicies) -> None:
    dispatched = beijing(2026, 9, 30, 10, 0)
    # Oct 1–7 off; 8, 9, 10 (make-up Saturday), 12, 13 are the five working days.
    deadline = policies.deadline(["hotline12345"], "handle", dispatched.astimezone(UTC))
    assert deadline == beijing(2026, 10, 13, 23, 59, 59).astimezone(UTC)


def test_statutory_limits_per_channel(policies: DeadlinePolicies) -> None:
    start = beijing(2026, 11, 2, 9, 0).astimezone(UTC)
    assert policies.deadline(["petition"], "accept", start) == beijing(2026, 11, 17, 23, 59, 59)
    assert policies.deadline(["petition"], "handle", start) == beijing(2027, 1, 1, 23, 59, 59)
    assert policies.deadline(["legalaid"], "accept", start) == beijing(2026, 11, 9, 23, 59, 59)
    assert policies.deadline(["court"], "handle", start) == beijing(2026, 12, 2, 23, 59, 59)
    assert policies.deadline(["juzhang"], "sign", start) == start + timedelta(minutes=10)
    assert policies.deadline(["juzhang"], "contact", start) == start + timedelta(minutes=30)
    # 书记在线: general items at the community the same day, major ones in 3 working days
    assert policies.deadline(["shuji"], "handle", start, Tier.COMMUNITY) == beijing(
        2026, 11, 2, 23, 59, 59
    )
    assert policies.deadline(["shuji"], "handle", start, Tier.DISTRICT) == beijing(
        2026, 11, 5, 23, 59, 59
    )
    # an unknown channel gets the default; a cluster of several channels the strictest
    assert policies.deadline(["grid-app"], "handle", start) == beijing(2026, 11, 9, 23, 59, 59)
    assert policies.deadline(["petition", "legalaid"], "handle", start) == beijing(2026, 11, 9, 23, 59, 59)


def test_cards_move_with_the_clock(policies: DeadlinePolicies) -> None:
    start = beijing(2026, 9, 30, 10, 0).astimezone(UTC)
    deadline = policies.deadline(["hotline12345"], "handle", start)
    assert deadline is not None
    clock = MovableClock(start)
    assert timing(start, deadline, clock(), policies).card is Card.NONE
    clock.set(beijing(2026, 10, 12, 12, 0))  # less than a fifth of the time left: near due
    state = timing(start, deadline, clock(), policies)
    assert (state.near_due, state.overdue, state.card) == (True, False, Card.YELLOW)
    clock.set(beijing(2026, 10, 14, 9, 0))  # just past due
    state = timing(start, deadline, clock(), policies)
    assert (state.overdue, state.card) == (True, Card.YELLOW)
    clock.set(beijing(2026, 10, 25, 9, 0))  # overdue by more than half the allowed time
    assert timing(start, deadline, clock(), policies).card is Card.RED
    # returned twice: red whatever the time
    assert timing(start, deadline, start, policies, returns=2).card is Card.RED


def test_bad_policy_files_list_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text("default: {handle: {weeks: 2}}\nchannels:\n  x: {handel: {days: 3}, sign: {days: -1}}\n")
    with pytest.raises(ConfigError) as caught:
        DeadlinePolicies.load(path)
    text = " ".join(caught.value.problems)
    assert "default.handle" in text
    assert "handel" in text
    assert "x.sign" in text


def test_routing_rules_suggest_department_place_and_tier(reference: Reference) -> None:
    rules = RoutingRules.load(reference)
    community = next(r for r in reference.regions.values() if r.level.value == "COMMUNITY")
    street = reference.regions[community.parent_id or ""]
    garbage = rules.suggest("01010102", community.id)  # 垃圾清运: 属地, community, automatic
    assert garbage.tier is Tier.COMMUNITY
    assert garbage.automatic
    assert garbage.department_id == next(
        d.id for d in reference.departments.values() if d.region_id == street.id
    )
    assert (garbage.street_id, garbage.community_id) == (street.id, community.id)
    noise = rules.suggest("0102", community.id)  # 生态环境: the eco bureau, waits in the pool
    assert (noise.department_id, noise.tier, noise.automatic) == ("dept-eco", Tier.STREET, False)
    group = rules.suggest("01010102", community.id, people=30)  # 集体访: district, a person decides
    assert (group.tier, group.automatic) == (Tier.DISTRICT, False)
    medical = rules.suggest("0208", community.id)  # no rule: departments.yaml's 分管
    assert medical.department_id == "dept-health"


def test_routing_rules_naming_unknown_things_are_refused(reference: Reference, tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("rules:\n  - {name: x, categories: ['9999'], department: dept-nowhere, tier: GALAXY}\n")
    with pytest.raises(ConfigError) as caught:
        RoutingRules.load(reference, path)
    text = " ".join(caught.value.problems)
    assert "9999" in text
    assert "dept-nowhere" in text
    assert "GALAXY" in text

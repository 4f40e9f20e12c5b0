"""Deadline policies per channel (data: ``casework/data/deadlines.yaml``), timing and cards.

A :class:`Limit` is one rule ("15 days", "3 working days", "10 minutes", "the same working day");
a :class:`ChannelPolicy` gives each stage of handling (accept, sign, contact, first feedback,
handle, extension) its limit; :class:`DeadlinePolicies` picks a channel's policy and computes
deadlines on a :class:`~casework.workdays.WorkCalendar`. A cluster reported through several
channels answers to the strictest of them: the earliest deadline wins.

:func:`timing` turns a deadline into what supervisors see: overdue, near due (临期) and the card —
yellow when near due or just past it, red when long overdue or repeatedly returned (退单).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from casework.workdays import WorkCalendar
from connectors import ConfigError

__all__ = ["STAGES", "Card", "ChannelPolicy", "DeadlinePolicies", "Limit", "Timing", "timing"]

DEFAULT_PATH = Path(__file__).with_name("data") / "deadlines.yaml"
STAGES = ("accept", "sign", "contact", "first_feedback", "handle", "extension")
_UNITS = ("minutes", "hours", "days", "working_days", "same_day")


class Card(StrEnum):
    """督办 cards: yellow (临期或刚超期), red (严重超期或多次退单)."""

    NONE = "NONE"
    YELLOW = "YELLOW"
    RED = "RED"


@dataclass(frozen=True, slots=True)
class Limit:
    """One time limit; exactly one unit."""

    unit: str
    amount: int = 0

    def deadline(self, start: datetime, calendar: WorkCalendar) -> datetime:
        match self.unit:
            case "minutes":
                return start + timedelta(minutes=self.amount)
            case "hours":
                return start + timedelta(hours=self.amount)
            case "days":
                return calendar.add_days(start, self.amount)
            case "working_days":
                return calendar.add_working_days(start, self.amount)
        return calendar.same_working_day(start)

    def describe(self) -> str:
        words = {"minutes": "分钟", "hours": "小时", "days": "日", "working_days": "个工作日"}
        return "当日" if self.unit == "same_day" else f"{self.amount}{words[self.unit]}"


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    name: str
    limits: Mapping[str, Limit]
    tiers: Mapping[str, Limit] = field(default_factory=dict)

    def limit(self, stage: str, tier: str | None = None) -> Limit | None:
        if stage == "handle" and tier is not None and tier in self.tiers:
            return self.tiers[tier]
        return self.limits.get(stage)


class DeadlinePolicies:
    """The loaded policies; ``policy(channel)`` falls back to the default."""

    def __init__(
        self,
        default: ChannelPolicy,
        channels: Mapping[str, ChannelPolicy],
        *,
        calendar: WorkCalendar | None = None,
        near_due_fraction: float = 0.2,
        red_overdue_fraction: float = 0.5,
        red_returns: int = 2,
    ) -> None:
        self.default = default
        self.channels = dict(channels)
        self.calendar = calendar or WorkCalendar()
        self.near_due_fraction = near_due_fraction
        self.red_overdue_fraction = red_overdue_fraction
        self.red_returns = red_returns

    @classmethod
    def load(cls, path: Path | None = None, *, calendar: WorkCalendar | None = None) -> DeadlinePolicies:
        """Read the policy file (the packaged default when ``path`` is None).

        Raises:
            ConfigError: the file is missing or malformed; lists every problem found.
        """
        problems: list[str] = []
        try:
            data = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"deadline policies: {exc}"]) from exc
        default = _policy("default", data.get("default") or {}, problems)
        channels = {
            str(k): _policy(str(k), v or {}, problems) for k, v in (data.get("channels") or {}).items()
        }
        cards = data.get("cards") or {}
        if problems:
            raise ConfigError(problems)
        return cls(
            default,
            channels,
            calendar=calendar,
            near_due_fraction=float(data.get("near_due_fraction", 0.2)),
            red_overdue_fraction=float(cards.get("red_overdue_fraction", 0.5)),
            red_returns=int(cards.get("red_returns", 2)),
        )

    def policy(self, channel: str) -> ChannelPolicy:
        return self.channels.get(channel, self.default)

    def deadline(
        self, channels: Iterable[str], stage: str, start: datetime, tier: str | None = None
    ) -> datetime | None:
        """The earliest deadline of ``stage`` among these channels' policies (None: no channel sets one)."""
        found = [
            limit.deadline(start, self.calendar)
            for limit in (self.policy(c).limit(stage, tier) for c in set(channels))
            if limit is not None
        ]
        return min(found) if found else None

    def card(self, start: datetime, deadline: datetime | None, now: datetime, returns: int = 0) -> Card:
        return timing(start, deadline, now, self, returns).card


@dataclass(frozen=True, slots=True)
class Timing:
    deadline: datetime | None
    overdue: bool
    near_due: bool
    card: Card


def timing(
    start: datetime, deadline: datetime | None, now: datetime, policies: DeadlinePolicies, returns: int = 0
) -> Timing:
    """Where ``now`` stands against a deadline that ran from ``start``."""
    repeated = returns >= policies.red_returns
    if deadline is None:
        return Timing(None, False, False, Card.RED if repeated else Card.NONE)
    span = max((deadline - start).total_seconds(), 1.0)
    left = (deadline - now).total_seconds()
    overdue = left < 0
    near_due = not overdue and left <= span * policies.near_due_fraction
    if repeated or -left > span * policies.red_overdue_fraction:
        card = Card.RED
    elif overdue or near_due:
        card = Card.YELLOW
    else:
        card = Card.NONE
    return Timing(deadline, overdue, near_due, card)


def _policy(name: str, raw: Any, problems: list[str]) -> ChannelPolicy:
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected a mapping of stages")
        return ChannelPolicy(name, {})
    limits = {
        stage: limit
        for stage in STAGES
        if stage in raw
        if (limit := _limit(f"{name}.{stage}", raw[stage], problems)) is not None
    }
    unknown = set(raw) - {*STAGES, "name", "tiers"}
    if unknown:
        problems.append(f"{name}: unknown stages {sorted(unknown)} (known: {', '.join(STAGES)})")
    tiers = {
        str(t): limit
        for t, v in (raw.get("tiers") or {}).items()
        if (limit := _limit(f"{name}.tiers.{t}", v, problems)) is not None
    }
    return ChannelPolicy(str(raw.get("name") or name), limits, tiers)


def _limit(where: str, raw: Any, problems: list[str]) -> Limit | None:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in _UNITS:
        problems.append(f"{where}: expected one of {{{', '.join(_UNITS)}: N}}, got {raw!r}")
        return None
    unit, amount = next(iter(raw.items()))
    if unit == "same_day":
        return Limit("same_day")
    if not isinstance(amount, int) or amount < 0:
        problems.append(f"{where}: {unit} must be a whole number ≥ 0, got {amount!r}")
        return None
    return Limit(unit, amount)

"""The shape of the phrase data, and the rule that keeps part of it for the held-out evaluation split.

Every phrase list (templates, facts, details, asks, synonym groups, channel frames) is split by position:
each fourth entry (index 3, 7, 11 …) is a *holdout* phrase. Tickets of tune incidents only ever use tune
phrases; tickets of holdout incidents use all of them, so holdout phrasings never appear in the tune set.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Phrases", "choose", "is_holdout_index"]

T = TypeVar("T")


def is_holdout_index(index: int) -> bool:
    return index % 4 == 3


def choose(rng: random.Random, items: Sequence[T], *, holdout: bool,
           keep: Callable[[T], bool] | None = None) -> T:
    """One of ``items`` (those ``keep`` accepts, if any do): any of them for a holdout ticket, a tune one
    otherwise."""
    kept = [(i, item) for i, item in enumerate(items) if keep is None or keep(item)] or list(enumerate(items))
    pool = [item for i, item in kept if holdout or not is_holdout_index(i)]
    return rng.choice(pool or [item for _, item in kept])


@dataclass(frozen=True, slots=True)
class Phrases:
    """What people say about one problem kind."""

    shorts: tuple[str, ...]    # names of the problem, e.g. 占道经营, 乱摆卖
    facts: tuple[str, ...]     # what happened, with slots ({place}, {who}, {amount} …)
    details: tuple[str, ...]   # an extra remark
    asks: tuple[str, ...]      # what they want done (read after 要求/希望/请求)
    claims: tuple[str, ...] = ()   # court: the applicant's claim (after 请求)
    matters: tuple[str, ...] = ()  # legal aid: the matter aid is sought for (after 因)

    @classmethod
    def of(cls, shorts: str, facts: tuple[str, ...], details: tuple[str, ...], asks: tuple[str, ...],
           claims: tuple[str, ...] = (), matters: tuple[str, ...] = ()) -> Phrases:
        """``shorts`` as one ``|``-separated string, the rest as tuples."""
        return cls(tuple(shorts.split("|")), facts, details, asks, claims, matters)

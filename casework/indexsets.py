"""Moving one member into and out of many index sets with one command.

A case is filed under a hundred-odd index sets (its text's bigrams above all), a cluster under a dozen
sets and as many sorted sets (sort orders, dedup blocks). Sent as one ``SADD``/``SREM``/``ZADD`` each,
the client's work of packing every command and parsing every reply cost more than anything Redis did
with them, and it was most of an ingest. :func:`move_in` queues one ``EVAL`` instead: the sets are its
keys (all of one hash slot, ``{ix}``, so it stays a single-slot command for a later Redis Cluster), the
member, the counts and the scores its arguments. :func:`move_many` moves many members (a page's
clusters) in one ``EVAL`` the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Move", "move_in", "move_many"]

_MOVE = """
-- ARGV, per member: the member, how many KEYS are its, how many of those it joins, how many it leaves,
-- then its score in each of the rest (sorted sets); its KEYS follow the previous member's
local k, a = 0, 1
while a <= #ARGV do
  local member, count = ARGV[a], tonumber(ARGV[a + 1])
  local joined, left = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  for i = 1, count do
    if i <= joined then
      redis.call('SADD', KEYS[k + i], member)
    elseif i <= joined + left then
      redis.call('SREM', KEYS[k + i], member)
    else
      redis.call('ZADD', KEYS[k + i], ARGV[a], member)
      a = a + 1
    end
  end
  k = k + count
end
return #KEYS
"""

_PLAIN = 2
"""Up to this many sets, plain commands cost no more than the script's one call."""


@dataclass(frozen=True, slots=True)
class Move:
    """``member`` joins every set of ``add``, leaves every set of ``remove`` and is scored
    ``scores[name]`` in each sorted set ``name`` of ``scores``."""

    member: str
    add: Collection[str] = ()
    remove: Collection[str] = ()
    scores: Mapping[str, float] = field(default_factory=dict)


def move_in(pipe: Any, member: str, *, add: Collection[str], remove: Collection[str] = (),
            scores: Mapping[str, float] | None = None) -> None:
    """Queue, on ``pipe``, ``member``'s joining every set of ``add``, leaving every set of ``remove`` and
    being scored ``scores[name]`` in each sorted set ``name`` of ``scores``."""
    move_many(pipe, [Move(member, add, remove, scores or {})])


def move_many(pipe: Any, moves: Sequence[Move]) -> None:
    """Queue every move of ``moves`` on ``pipe``: one ``EVAL`` for all of them (plain commands when
    there are at most a couple of sets)."""
    if sum(len(m.add) + len(m.remove) + len(m.scores) for m in moves) <= _PLAIN:
        for move in moves:
            _plain(pipe, move)
        return
    names: list[str] = []
    args: list[Any] = []
    for move in moves:
        names += [*move.add, *move.remove, *move.scores]
        args += [move.member, len(move.add) + len(move.remove) + len(move.scores), len(move.add),
                 len(move.remove), *map(repr, move.scores.values())]
    pipe.eval(_MOVE, len(names), *names, *args)


def _plain(pipe: Any, move: Move) -> None:
    for name in move.add:
        pipe.sadd(name, move.member)
    for name in move.remove:
        pipe.srem(name, move.member)
    for name, score in move.scores.items():
        pipe.zadd(name, {move.member: score})

"""Moving one member into and out of many index sets with one command.

A case is filed under a hundred-odd index sets (its text's bigrams above all), a cluster under a dozen
sets and as many sorted sets (sort orders, dedup blocks). Sent as one ``SADD``/``SREM``/``ZADD`` each,
the client's work of packing every command and parsing every reply cost more than anything Redis did
with them, and it was most of an ingest. :func:`move_in` queues one ``EVAL`` instead: the sets are its
keys (all of one hash slot, ``{ix}``, so it stays a single-slot command for a later Redis Cluster), the
member, the counts and the scores its arguments.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["move_in"]

_MOVE = """
local joined, left = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS do
  if i <= joined then
    redis.call('SADD', KEYS[i], ARGV[1])
  elseif i <= joined + left then
    redis.call('SREM', KEYS[i], ARGV[1])
  else
    redis.call('ZADD', KEYS[i], ARGV[i - joined - left + 3], ARGV[1])
  end
end
return #KEYS
"""

_PLAIN = 2
"""Up to this many sets, plain commands cost no more than the script's one call."""


def move_in(pipe: Any, member: str, *, add: Collection[str], remove: Collection[str] = (),
            scores: Mapping[str, float] | None = None) -> None:
    """Queue, on ``pipe``, ``member``'s joining every set of ``add``, leaving every set of ``remove`` and
    being scored ``scores[name]`` in each sorted set ``name`` of ``scores``."""
    scored = scores or {}
    if len(add) + len(remove) + len(scored) <= _PLAIN:
        for name in add:
            pipe.sadd(name, member)
        for name in remove:
            pipe.srem(name, member)
        for name, score in scored.items():
            pipe.zadd(name, {member: score})
        return
    names = [*add, *remove, *scored]
    pipe.eval(_MOVE, len(names), *names, member, len(add), len(remove), *map(repr, scored.values()))

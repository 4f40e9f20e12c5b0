"""Moving one member into and out of many index sets with one command.

A case is filed under a hundred-odd index sets (its text's bigrams above all), a cluster under a dozen.
Sent as one ``SADD``/``SREM`` each, the client's work of packing every command and parsing every
reply cost more than anything Redis did with them, and it was most of an ingest. :func:`move_in`
queues one ``EVAL`` instead: the sets are its keys (all of one hash slot, ``{ix}``, so it stays a
single-slot command for a later Redis Cluster), the member and the number of sets to join its
arguments.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["move_in"]

_MOVE = """
local joined = tonumber(ARGV[2])
for i = 1, #KEYS do
  if i <= joined then redis.call('SADD', KEYS[i], ARGV[1]) else redis.call('SREM', KEYS[i], ARGV[1]) end
end
return #KEYS
"""

_PLAIN = 2
"""Up to this many sets, plain SADD/SREM cost no more than the script's one call."""


def move_in(pipe: Any, member: str, *, add: Collection[str], remove: Collection[str] = ()) -> None:
    """Queue, on ``pipe``, ``member``'s joining every set of ``add`` and leaving every set of ``remove``."""
    if len(add) + len(remove) <= _PLAIN:
        for name in add:
            pipe.sadd(name, member)
        for name in remove:
            pipe.srem(name, member)
        return
    names = [*add, *remove]
    pipe.eval(_MOVE, len(names), *names, member, len(add))

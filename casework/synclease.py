"""Which gateway replica syncs which channel, and what the other replicas learn of its passes.

Every replica runs a sync loop per channel, but only the holder of the channel's *lease* — a Redis
key with a time to live, naming the replica — calls the channel's system. The others follow: the
holder publishes the channel's sync state after every pass (last complete sync, last error, whether
its breaker is open, whether start-up gave up on the channel) and a follower copies it into its own
:class:`~casework.channels.ChannelRuntime`, so ``/readyz``, channel health and the metrics read the
same on every replica.

Who should hold what is planned, not raced for: the replicas that sync beat a heartbeat into Redis,
and every replica deals the channels out over the live ones the same way (:func:`plan`), weighing
each by the cases it has brought (:func:`channel_weight`): two replicas split eight small channels
four and four, and a hotline carrying a third of the city's appeals gets a replica nearly to itself.
A replica takes a free channel only when the plan gives it that channel, and a holder the plan no
longer names (a replica joined, a channel grew) hands the channel over after its pass. A holder
renews the lease before each page it saves and before each pause between passes (for the pause plus
the lease's time to live). One that stops renewing — killed, hung, cut off from Redis — loses the
channel to the next replica that asks once the key lapses; one that shuts down cleanly releases its
leases at once. Ingest is idempotent and the cursor is saved after the page it follows, so a
hand-over (even one in the middle of a slow page) may re-read a page, never lose or duplicate a case.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from casework import keys

__all__ = ["SyncLeases", "SyncState", "plan", "replica_name"]

# Renew the lease when it is ours; take it when it is free and we may (ARGV[3]); never touch another
# replica's.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (holder == false and ARGV[3] == '1') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Replicas that sync are members of one sorted set scored by when their heartbeat runs out, on the
# server's clock (replicas' clocks may disagree).
_BEAT = """
local now = redis.call('TIME')
local millis = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', millis)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], millis + tonumber(ARGV[2]), ARGV[1])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def replica_name() -> str:
    """This process's default name among the replicas: host and process id, unique among live
    processes. A gateway restarted in the same container usually gets the same name back, and so
    takes its channels up again at once instead of waiting for its old leases to lapse."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class SyncState:
    """What the holder of a channel's lease tells the other replicas after each pass."""

    holder: str
    last_sync_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    refused: str | None          # a refusal that will not cure itself (credentials, 4xx)
    given_up_at_start: bool
    breaker_open: bool

    def dump(self) -> str:
        return json.dumps({"holder": self.holder, "last_sync_at": _iso(self.last_sync_at),
                           "last_error": self.last_error, "last_error_at": _iso(self.last_error_at),
                           "refused": self.refused, "given_up_at_start": self.given_up_at_start,
                           "breaker_open": self.breaker_open}, ensure_ascii=False)

    @classmethod
    def load(cls, raw: str | bytes) -> SyncState:
        data: dict[str, Any] = json.loads(raw)
        return cls(holder=str(data["holder"]), last_sync_at=_time(data.get("last_sync_at")),
                   last_error=data.get("last_error"), last_error_at=_time(data.get("last_error_at")),
                   refused=data.get("refused"), given_up_at_start=bool(data.get("given_up_at_start")),
                   breaker_open=bool(data.get("breaker_open")))


class SyncLeases:
    """The channels' sync leases and published sync states, for one replica.

    Args:
        redis: the shared store (every replica's).
        holder: this replica's name (:func:`replica_name`).
        ttl: seconds a lease outlives its last renewal; a crashed holder's channels wait this long
            (plus the pause it renewed for) before another replica takes them over.
    """

    def __init__(self, redis: Any, *, holder: str, ttl: float = 15.0) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive time to live")
        self.redis = redis
        self.holder = holder
        self.ttl = ttl
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._beat = redis.register_script(_BEAT)

    async def hold(self, channel: str, *, pause: float = 0.0, take: bool = True) -> bool:
        """Renew the channel's lease for ``pause`` seconds plus the time to live, or take it when it
        is free and ``take`` (a replica leaves the free channels :func:`plan` gives others to them).

        Returns whether this replica holds it now.
        """
        millis = _millis(max(0.0, pause) + self.ttl)
        return bool(await self._hold(keys=[keys.sync_lease(channel)], args=[self.holder, millis, int(take)]))

    async def release(self, channel: str) -> bool:
        """Give the lease up if this replica holds it (so another takes over without waiting)."""
        return bool(await self._release(keys=[keys.sync_lease(channel)], args=[self.holder]))

    async def beat(self) -> list[str]:
        """Tell the other replicas this one syncs (for the time to live); returns the live replicas."""
        return await self._replicas(self.holder)

    async def live(self) -> list[str]:
        """The replicas whose heartbeat has not run out, sorted by name."""
        return await self._replicas("")

    async def leave(self) -> None:
        """This replica stops syncing: the others plan without it at once."""
        await self.redis.zrem(keys.SYNC_REPLICAS, self.holder)

    async def _replicas(self, beating: str) -> list[str]:
        found = await self._beat(keys=[keys.SYNC_REPLICAS], args=[beating, _millis(self.ttl)])
        return sorted(_text(name) for name in found)

    async def holder_of(self, channel: str) -> str | None:
        raw = await self.redis.get(keys.sync_lease(channel))
        return None if raw is None else _text(raw)

    async def publish(self, channel: str, state: SyncState) -> None:
        await self.redis.hset(keys.SYNC_STATES, channel, state.dump())

    async def state(self, channel: str) -> SyncState | None:
        """The last state the channel's holder published (``None`` before any holder finished a pass)."""
        raw = await self.redis.hget(keys.SYNC_STATES, channel)
        return None if raw is None else SyncState.load(raw)


LOAD_UNIT = 200
"""Cases below which channels weigh the same in :func:`plan`: a fresh or small deployment is split
by count, and its channels do not change hands while their first pages come in."""


def channel_weight(cases: int) -> int:
    """A channel's share of the sync work in :func:`plan`, from the cases it has brought: 10 up to
    :data:`LOAD_UNIT`, then 10 × cases/LOAD_UNIT rounded down to a quarter of a doubling (steps of
    2^¼ ≈ 1.19). Coarse on purpose: replicas reading the counts a moment apart, and channels growing
    between passes, get the same plan unless a count crosses a step."""
    steps = math.floor(4 * math.log2(max(1.0, cases / LOAD_UNIT)))
    return round(10 * 2 ** (steps / 4))


def plan(channels: Iterable[str], replicas: Iterable[str],
         weights: Mapping[str, int] | None = None) -> Mapping[str, str]:
    """Which replica should sync which channel: as even a split of the channels' weights (1 each when
    not given) as dealing allows, and the same on every replica that sees the same live replicas and
    weights.

    Channels are dealt heaviest first (then in name order) to the replica with the least weight so far;
    ties go to the replica ranked first for that channel by rendezvous hashing, so which of two equal
    replicas gets a channel does not depend on the replicas' names sorting one way.
    """
    live = sorted(set(replicas))
    if not live:
        return {}
    weight = weights or {}
    load = dict.fromkeys(live, 0)
    owners: dict[str, str] = {}
    for channel in sorted(set(channels), key=lambda name: (-weight.get(name, 1), name)):
        owner = min(live, key=lambda replica: (load[replica], -_rank(channel, replica)))
        owners[channel] = owner
        load[owner] += weight.get(channel, 1)
    return owners


def _rank(channel: str, replica: str) -> int:
    digest = hashlib.blake2b(f"{channel}\0{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(raw: str | bytes) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(raw: str | None) -> datetime | None:
    return None if not raw else datetime.fromisoformat(raw)

"""Login throttling: failure counters and locks per account and per client address.

After ``max_failures`` failed logins within ``window`` seconds an account name is locked for
``lockout`` seconds; a client address gets a larger budget of its own (``max_ip_failures``), so one
address cannot spray passwords over many names. Counters are kept per *name tried*, whether or not
such an account exists, so a lock says nothing about which names are real. The counters live in
Redis when a client is given (shared by every gateway replica), else in process memory.

Key layout (one hash tag per counted subject, so a counter and its lock share a Cluster slot)::

    minsheng:auth:{u:<sha256(name)[:24]}:failures   INCR, expires ``window`` after the first failure
    minsheng:auth:{u:<…>}:locked                    set with EX ``lockout`` once the budget is spent
    minsheng:auth:{c:<…>}:failures / :locked        the same per client id (client credentials)
    minsheng:auth:{ip:<…>}:failures / :locked       the same per client address
    minsheng:auth:{once:<…>}                        one-time markers (a TOTP code used once)
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["KEY_PREFIX", "LockoutPolicy", "LoginGuard"]

KEY_PREFIX = "minsheng:auth"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5          # per account name …
    window: int = 15 * 60          # … within this many seconds
    lockout: int = 15 * 60         # seconds a spent account name stays locked
    max_ip_failures: int = 50      # per client address, same window
    ip_lockout: int = 15 * 60


class _Counters(Protocol):
    async def incr(self, name: str, ttl: int) -> int: ...
    async def lock(self, name: str, ttl: int) -> None: ...
    async def remaining(self, name: str) -> float | None: ...
    async def delete(self, *names: str) -> None: ...
    async def set_once(self, name: str, ttl: int) -> bool: ...


class _RedisCounters:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def incr(self, name: str, ttl: int) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, ttl, nx=True)   # the window starts at the first failure
            count, _ = await pipe.execute()
        return int(count)

    async def lock(self, name: str, ttl: int) -> None:
        await self.redis.set(name, b"1", ex=ttl)

    async def remaining(self, name: str) -> float | None:
        millis = int(await self.redis.pttl(name))
        return millis / 1000 if millis > 0 else None

    async def delete(self, *names: str) -> None:
        await self.redis.delete(*names)

    async def set_once(self, name: str, ttl: int) -> bool:
        return bool(await self.redis.set(name, b"1", ex=ttl, nx=True))


class _MemoryCounters:
    """The same semantics in process memory (a single process; tests and tools without Redis)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}   # name → (value, expires at)

    def _live(self, name: str) -> tuple[int, float] | None:
        entry = self._values.get(name)
        if entry is not None and entry[1] <= self._clock():
            del self._values[name]
            return None
        return entry

    async def incr(self, name: str, ttl: int) -> int:
        value, expires = self._live(name) or (0, self._clock() + ttl)
        self._values[name] = (value + 1, expires)
        return value + 1

    async def lock(self, name: str, ttl: int) -> None:
        self._values[name] = (1, self._clock() + ttl)

    async def remaining(self, name: str) -> float | None:
        entry = self._live(name)
        return None if entry is None else entry[1] - self._clock()

    async def delete(self, *names: str) -> None:
        for name in names:
            self._values.pop(name, None)

    async def set_once(self, name: str, ttl: int) -> bool:
        if self._live(name) is not None:
            return False
        self._values[name] = (1, self._clock() + ttl)
        return True


def _subject_key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:24]
    return f"{KEY_PREFIX}:{{{kind}:{digest}}}"


class LoginGuard:
    """Answers "may this name, from this address, try now?" and counts the failures."""

    def __init__(self, redis: Redis | None = None, policy: LockoutPolicy | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or LockoutPolicy()
        self._counters: _Counters = _RedisCounters(redis) if redis is not None else _MemoryCounters(clock)

    async def retry_after(self, name: str, ip: str | None, *, kind: str = "u") -> int | None:
        """Seconds until ``name`` (or the address ``ip``) may try again; ``None`` when not locked.

        ``kind`` keeps namespaces apart: ``u`` for people's usernames, ``c`` for client ids.
        """
        waits = [await self._counters.remaining(_subject_key(kind, name) + ":locked")]
        if ip:
            waits.append(await self._counters.remaining(_subject_key("ip", ip) + ":locked"))
        longest = max((w for w in waits if w is not None), default=None)
        return None if longest is None else max(1, math.ceil(longest))

    async def failed(self, name: str, ip: str | None, *, kind: str = "u") -> int | None:
        """Count a failed attempt; returns the Retry-After seconds when this failure locked it."""
        policy = self.policy
        account = _subject_key(kind, name)
        if await self._counters.incr(account + ":failures", policy.window) >= policy.max_failures:
            await self._counters.lock(account + ":locked", policy.lockout)
            await self._counters.delete(account + ":failures")
        if ip:
            address = _subject_key("ip", ip)
            if await self._counters.incr(address + ":failures", policy.window) >= policy.max_ip_failures:
                await self._counters.lock(address + ":locked", policy.ip_lockout)
                await self._counters.delete(address + ":failures")
        return await self.retry_after(name, ip, kind=kind)

    async def succeeded(self, name: str, *, kind: str = "u") -> None:
        """A successful login forgets the name's failures (the address keeps its count)."""
        await self._counters.delete(_subject_key(kind, name) + ":failures")

    async def use_once(self, marker: str, ttl: int) -> bool:
        """``True`` the first time ``marker`` is used within ``ttl`` seconds (e.g. a TOTP code)."""
        return await self._counters.set_once(_subject_key("once", marker), ttl)

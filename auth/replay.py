"""Replay protection for pushed (webhook) requests, shared by every gateway replica through Redis.

A connector verifies its channel's signature, timestamp and nonce itself (it knows the channel's
headers), remembering nonces in its own process. Behind several replicas a captured request could
be replayed to another replica, so the gateway also asks :class:`ReplayGuard` after the connector
accepted: the request's fingerprint (SHA-256 of body and signature headers) may be accepted once
per window, whichever replica sees it. ``check_timestamp`` is there for channels that sign a time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from auth.errors import ReplayRejected
from auth.lockout import KEY_PREFIX

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["ReplayGuard", "request_fingerprint"]


def request_fingerprint(body: bytes, headers: Mapping[str, str], names: Iterable[str] = ()) -> str:
    """SHA-256 over the body and the named headers (e.g. signature, timestamp, nonce), hex."""
    lowered = {key.lower(): value for key, value in headers.items()}
    digest = hashlib.sha256()
    for name in sorted(name.lower() for name in names):
        digest.update(f"{name}:{lowered.get(name, '')}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class ReplayGuard:
    """Accepts each fingerprint once per ``window`` seconds (in Redis when given, else in memory)."""

    def __init__(self, redis: Redis | None = None, *, window: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.window = window
        self._clock = clock
        self._seen: dict[str, float] = {}

    def check_timestamp(self, sent_at: float) -> None:
        """Raise :class:`ReplayRejected` when ``sent_at`` (unix seconds) is outside the window."""
        if abs(self._clock() - sent_at) > self.window:
            raise ReplayRejected("the request's timestamp is outside the accepted window")

    async def accept(self, channel: str, fingerprint: str) -> None:
        """Record ``fingerprint``; raise :class:`ReplayRejected` if it was accepted within the window."""
        # Remembered for two windows: a request at the edge of the timestamp window stays caught.
        ttl = max(1, int(self.window * 2))
        name = f"{KEY_PREFIX}:{{hook:{channel}}}:{fingerprint}"
        if self.redis is not None:
            fresh = bool(await self.redis.set(name, b"1", ex=ttl, nx=True))
        else:
            now = self._clock()
            self._seen = {key: until for key, until in self._seen.items() if until > now}
            fresh = name not in self._seen
            self._seen.setdefault(name, now + ttl)
        if not fresh:
            raise ReplayRejected("request already accepted (replay)")

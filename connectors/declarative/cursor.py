"""The declarative connector's cursor: a high-water mark of update times, robust to hostile channels.

Channels send pages out of order, the same id on two pages, or an update stamped earlier than one
already seen. So the mark moves only when a whole pass has completed (order within a pass does not
matter); each new pass asks from ``mark - lookback``; and ``seen`` (id → update time and fingerprint
of what was delivered within the lookback) drops what was already delivered, and an older version
of a record that arrives after a newer one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["Cursor", "fingerprint"]

log = logging.getLogger(__name__)


def fingerprint(raw: Any) -> str:
    """A short digest of a raw record, to tell a changed record from one delivered before."""
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass
class Cursor:
    """``mark``: every update up to it has been delivered (completed passes). ``position``: where the
    pass under way stands (the channel's cursor, a page number or a window start), ``None`` between
    passes. ``high``: the latest update seen in the pass under way."""

    mark: datetime | None = None
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (updated ISO, fingerprint)
    position: Any = None
    high: datetime | None = None

    @classmethod
    def load(cls, cursor: str | None) -> Cursor:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            seen = {str(k): (str(v[0]), str(v[1])) for k, v in dict(data.get("seen") or {}).items()}
            return cls(_time(data.get("mark")), seen, data.get("position"), _time(data.get("high")))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            log.warning("declarative: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls()

    def dump(self) -> str:
        return json.dumps({"mark": _iso(self.mark), "high": _iso(self.high), "position": self.position,
                           "seen": {k: list(v) for k, v in self.seen.items()}},
                          ensure_ascii=False, separators=(",", ":"))

    def floor(self, lookback: timedelta) -> datetime | None:
        """Updates before this were delivered by an earlier pass."""
        return None if self.mark is None else self.mark - lookback

    def fresh(self, source_id: str, updated: datetime, digest: str, lookback: timedelta) -> bool:
        """Whether this version of a record is news; remembers it when it is."""
        floor = self.floor(lookback)
        if floor is not None and updated < floor:
            return False
        known = self.seen.get(source_id)
        stamp = updated.isoformat()
        if known is not None and (known[0] > stamp or known == (stamp, digest)):
            return False
        self.seen[source_id] = (stamp, digest)
        self.high = updated if self.high is None else max(self.high, updated)
        return True

    def finish_pass(self, lookback: timedelta) -> None:
        """The pass completed: move the mark and forget what is older than the next lookback."""
        if self.high is not None:
            self.mark = self.high if self.mark is None else max(self.mark, self.high)
        self.position, self.high = None, None
        floor = self.floor(lookback)
        if floor is not None:
            cut = floor.isoformat()
            self.seen = {k: v for k, v in self.seen.items() if v[0] >= cut}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(str(value))

"""The audit log: every unmasked read and every write, as JSON lines in a file outside Redis.

One line per entry: ``{"time", "user", "subject", "roles", "action", "object", "fields", "outcome",
"request_id", "ip"[, "detail"]}`` — field *names*, never the personal data itself. Writing happens
on a background thread (``record`` only enqueues), so the event loop never waits on the disk.

Files: the caller names the active file (``/var/log/minsheng/audit.jsonl``). At the first write of
a new (UTC) day, or once the file passes ``max_bytes``, it is renamed to ``audit.<day>.jsonl``
(``audit.<day>.<n>.jsonl`` for further parts of one day) and a new one is started; rotated files
older than ``retention_days`` are deleted. Keep at least 180 days in production (网络安全法 art. 21
asks for six months). Give each gateway replica its own file: rotation is per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from auth.viewer import Viewer

__all__ = ["AuditEntry", "AuditLog", "Outcome"]

log = logging.getLogger(__name__)

MAX_PENDING_LINES = 100_000


class Outcome:
    """Outcome words of an entry."""

    OK = "ok"              # done / shown
    DENIED = "denied"      # refused by the rights policy
    FAILED = "failed"      # allowed, but it did not succeed (upstream error, conflict …)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    time: datetime
    user: str
    subject: str
    roles: tuple[str, ...]
    action: str                      # e.g. "unmask", "dispatchCluster", "signAssignment"
    object: str | None               # a global id or store key
    fields: tuple[str, ...] = ()     # personal fields read in clear, or fields written
    outcome: str = Outcome.OK
    request_id: str | None = None
    ip: str | None = None
    detail: str | None = None

    def to_json(self) -> str:
        line: dict[str, Any] = {
            "time": self.time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user": self.user, "subject": self.subject, "roles": list(self.roles), "action": self.action,
            "object": self.object, "fields": list(self.fields), "outcome": self.outcome,
            "request_id": self.request_id, "ip": self.ip}
        if self.detail is not None:
            line["detail"] = self.detail
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _now() -> datetime:
    return datetime.now(UTC)


class _RotatingWriter:
    """Appends lines to ``path``, rotating by day and size and deleting what is past retention."""

    def __init__(self, path: Path, max_bytes: int, retention_days: int, fsync: bool) -> None:
        self.path, self.max_bytes, self.retention_days, self.fsync = path, max_bytes, retention_days, fsync
        self._file: IO[str] | None = None
        self._day: date | None = None
        self._rotated = re.compile(
            re.escape(path.stem) + r"\.(\d{4}-\d{2}-\d{2})(?:\.\d+)?" + re.escape(path.suffix))

    def _open(self, today: date) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        stat = os.fstat(fd)
        self._day = datetime.fromtimestamp(stat.st_mtime, UTC).date() if stat.st_size else today
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        return self._file

    def write(self, lines: list[str], today: date) -> None:
        handle = self._file or self._open(today)
        if self._day != today and handle.tell() > 0:
            handle = self._rotate(today)
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())
        if handle.tell() >= self.max_bytes:
            self._rotate(today)

    def _rotate(self, today: date) -> IO[str]:
        day = self._day or today
        self.close()
        target = self.path.with_name(f"{self.path.stem}.{day.isoformat()}{self.path.suffix}")
        part = 0
        while target.exists():
            part += 1
            target = self.path.with_name(f"{self.path.stem}.{day.isoformat()}.{part}{self.path.suffix}")
        self.path.rename(target)
        self._prune(today)
        return self._open(today)

    def _prune(self, today: date) -> None:
        cutoff = today - timedelta(days=self.retention_days)
        for candidate in self.path.parent.iterdir():
            match = self._rotated.fullmatch(candidate.name)
            if match and date.fromisoformat(match.group(1)) < cutoff:
                candidate.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AuditLog:
    """An append-only JSON-lines audit sink written by one background thread."""

    def __init__(self, path: str | Path, *, max_bytes: int = 64 * 1024 * 1024, retention_days: int = 180,
                 fsync: bool = False, clock: Callable[[], datetime] = _now) -> None:
        if retention_days < 1 or max_bytes < 1024:
            raise ValueError("retention_days must be ≥ 1 (180 in production) and max_bytes ≥ 1024")
        self.path = Path(path)
        self._clock = clock
        self._writer = _RotatingWriter(self.path, max_bytes, retention_days, fsync)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="minsheng-audit", daemon=True)
        self._thread.start()

    def write(self, entry: AuditEntry) -> None:
        """Enqueue one entry; never blocks."""
        if self._closed:
            raise RuntimeError("the audit log is closed")
        self._queue.put(entry.to_json())

    def record(self, viewer: Viewer, action: str, object_id: str | None = None, *,
               fields: tuple[str, ...] | list[str] = (), outcome: str = Outcome.OK,
               request_id: str | None = None, ip: str | None = None, detail: str | None = None) -> None:
        """Enqueue an entry for ``viewer`` doing ``action`` on ``object_id``."""
        self.write(AuditEntry(time=self._clock(), user=viewer.username, subject=viewer.subject,
                              roles=tuple(sorted(str(role) for role in viewer.roles)), action=action,
                              object=object_id, fields=tuple(fields), outcome=outcome,
                              request_id=request_id, ip=ip, detail=detail))

    def event(self, user: str, action: str, object_id: str | None = None, *, outcome: str = Outcome.OK,
              ip: str | None = None, request_id: str | None = None, detail: str | None = None) -> None:
        """Enqueue an entry for someone who is not (yet) a viewer, e.g. a login attempt by name."""
        self.write(AuditEntry(time=self._clock(), user=user, subject="", roles=(), action=action,
                              object=object_id, outcome=outcome, request_id=request_id, ip=ip, detail=detail))

    async def flush(self) -> None:
        """Wait until everything enqueued so far is on disk (in a thread: the loop stays free)."""
        await asyncio.to_thread(self._queue.join)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._writer.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 1000:
                    batch.append(self._queue.get_nowait())
            lines = [line for line in batch if line is not None]
            self._write(lines)
            for _ in batch:
                self._queue.task_done()
            if None in batch:
                return

    def _write(self, lines: list[str]) -> None:
        self._pending.extend(lines)
        if not self._pending:
            return
        try:
            self._writer.write(self._pending, self._clock().astimezone(UTC).date())
        except OSError as exc:
            # Keep the lines and try again with the next batch; an audit entry is not dropped lightly.
            log.error("audit log %s not writable (%d lines waiting): %s", self.path, len(self._pending), exc)
            if len(self._pending) > MAX_PENDING_LINES:
                del self._pending[: len(self._pending) - MAX_PENDING_LINES]
                log.error("audit log: oldest entries dropped past %d waiting", MAX_PENDING_LINES)
            self._writer.close()
            return
        self._pending.clear()

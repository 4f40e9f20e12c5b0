"""Helpers for the subscription tests: gateways with live events, reference protocol clients, writers.

* :func:`reference_clients` (session fixture): installs the pinned npm reference clients
  (``graphql-ws``, ``graphql-sse``; ``tests/protocol_clients/package.json``) from the npm registry
  once, and fails loudly when ``node``/``npm`` are missing — these tests exist to run them.
* :class:`RefClient`: one subscription through a reference client in a ``node`` process; its lines
  are read with :meth:`RefClient.expect`; :meth:`RefClient.kill` vanishes abruptly (SIGKILL).
* :func:`live_gateway`: a gateway (real uvicorn, sync off) on a Redis database; yields its URL and
  app, so a test can count the feed's live subscribers.
* :class:`Writer`: changes through casework (store ingest, event appends) as another process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from casework.events import EventLog, event_fields
from casework.reference import Reference
from casework.store import CaseStore
from connectors import CaseRecord, Party, Place, UnifiedStatus
from gateway.app import create_app
from gateway.settings import DEV_HASH_KEY, Settings
from tests.e2e import gateway_settings, login
from tests.servers import serve

__all__ = ["CLIENTS_DIR", "EVENT_FIELDS", "RefClient", "Writer", "live_gateway", "reference_clients",
           "wait_for"]

CLIENTS_DIR = Path(__file__).with_name("protocol_clients")
EVENT_FIELDS = "cursor type caseIds departmentIds channels status"
CITIZEN_PHONE = "13728835126"  # the demo account citizen's verified phone (auth/data/accounts.yaml)


@pytest.fixture(scope="session")
def reference_clients() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the reference protocol clients (Node 20: apt install nodejs "
                    "npm)")
    wanted = json.loads((CLIENTS_DIR / "package.json").read_text())["dependencies"]
    installed = {name: _installed_version(name) for name in wanted}
    if installed != wanted:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                       cwd=CLIENTS_DIR, check=True, timeout=300)
    return CLIENTS_DIR / "subscribe.mjs"


def _installed_version(name: str) -> str | None:
    manifest = CLIENTS_DIR / "node_modules" / name / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


class RefClient:
    """A reference client running one subscription in a ``node`` process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, script: Path, mode: str, url: str, token: str | None, query: str,
                    variables: dict[str, Any] | None = None) -> RefClient:
        process = await asyncio.create_subprocess_exec(
            "node", str(script), mode, url, token or "", query, json.dumps(variables or {}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        return cls(process)

    async def line(self, within: float = 20.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not raw:
            raise AssertionError("the reference client exited without another line")
        return dict(json.loads(raw))

    async def expect(self, kind: str, within: float = 20.0) -> dict[str, Any]:
        """The next line of ``kind``, skipping ``connected``."""
        while True:
            found = await self.line(within)
            if found["kind"] == kind:
                return found
            if found["kind"] != "connected":
                raise AssertionError(f"expected {kind}, got {found}")

    async def events(self, n: int, within: float = 20.0) -> list[dict[str, Any]]:
        """The next ``n`` caseEvents payloads."""
        return [(await self.expect("next", within))["payload"]["data"]["caseEvents"] for _ in range(n)]

    async def silent(self, seconds: float = 1.0) -> bool:
        """Whether nothing more arrives within ``seconds`` (used only to check absence, never timing)."""
        try:
            await self.line(seconds)
        except TimeoutError:
            return True
        return False

    def kill(self) -> None:
        """Vanish abruptly: SIGKILL, no close frame."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self) -> None:
        self.kill()
        await self.process.wait()


async def wait_for(condition: Any, within: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition()`` until true (a state, not a duration, is what the tests assert)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def live_gateway(redis_url: str, channels_file: Path, sandbox_url: str,
                 **overrides: Any) -> Iterator[tuple[str, Starlette]]:
    settings: Settings = gateway_settings(redis_url, channels_file, sandbox_url, sync=False, **overrides)
    app = create_app(settings)
    with serve(app, port=settings.port) as url:
        yield url, app


def subscribers(app: Starlette) -> int:
    resources = app.state.resources
    return 0 if resources is None or resources.feed is None else int(resources.feed.subscribers)


def token(url: str, username: str) -> str:
    return login(url, username)


class Writer:
    """Changes as another gateway process would make them: through casework, on the same Redis."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.from_url(redis_url)
        self.events = EventLog(self.redis)
        self.store = CaseStore(self.redis, Reference.load(), events=self.events,
                               hash_key=DEV_HASH_KEY.encode())
        self.serial = 0
        self.prefix = uuid.uuid4().hex[:6]  # every writer's cases are new cases

    async def case(self, *, street: str = "玉塘街道", community: str = "田寮社区", phone: str = "13900000000",
                   channel: str = "hotline12345", status: UnifiedStatus = UnifiedStatus.ACCEPTED,
                   source_id: str | None = None) -> str:
        """Ingest one case (created, or updated when ``source_id`` exists); returns its key."""
        self.serial += 1
        source_id = source_id or f"RT{self.prefix}{self.serial:04d}"
        now = datetime.now(UTC)
        await self.store.ingest(CaseRecord(
            channel=channel, source_id=source_id, title="小区门口占道经营", content=f"第{self.serial}次反映",
            category_hint="占道经营", place=Place(street=street, community=community, address="田寮路1号"),
            parties=(Party(name="陈晓明", phone=phone),), status=status, source_status=status.value,
            received_at=now, updated_at=now))
        return f"{channel}:{source_id}"

    async def dispatch(self, case_key: str, department: str) -> str:
        """An ``assignment.dispatched`` event, as the dispatch mutations append it."""
        return await self.events.append("assignment.dispatched", event_fields(
            cases=[case_key], departments=[department], channels=[case_key.split(":", 1)[0]],
            regions=["440311005002"], assignment=f"A-{case_key}", status="DISPATCHED"))

    async def aclose(self) -> None:
        await self.redis.aclose()

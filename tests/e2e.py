"""Shared end-to-end fixtures: the sandbox channels and the gateway, each served by real uvicorn.

Use them with ``from tests.e2e import *`` (``__all__`` holds the fixtures only) and import the
helpers you need by name. The fixtures are module-scoped on purpose: every module that star-imports
them gets fixture definitions of its own, so a "session" scope would keep one sandbox and two gateways
per module alive (and syncing) until the very end of the run; a module's are stopped when it ends.

* ``sandbox`` (module): the eight sandbox channel systems (seed 7) on one port, every ticket arrived.
* ``synced_redis_url`` (module): a Redis database (on the test ``redis-server``) that a gateway with
  sync on has filled from the sandbox, then stopped.
* ``gateway`` (module): a gateway on that database with sync off, so the sandbox sees only what
  queries cause (its ``/__sandbox/stats`` then count ``Case.source`` fetches exactly).
* ``graph``: a small GraphQL client on ``gateway``, logged in as ``center`` (the district command
  centre: sees everything). ``graph.as_user("yutang")`` is the same gateway as another demo account,
  ``graph.anonymous()`` without a token.
* :func:`start_gateway`: a context manager for a gateway of your own (its own database, sync on);
  it yields a client logged in as ``center`` too.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from gateway.app import create_app
from gateway.settings import DEFAULT_CHANNELS_FILE, Settings
from tests.servers import free_port, serve

__all__ = ["e2e_dir", "gateway", "graph", "sandbox", "synced_redis_url"]

CHANNELS = ("hotline12345", "mayor", "court", "legalaid", "petition", "open311", "shuji", "juzhang")
SEED = 7
# Databases of the test redis-server this module uses (other tests flush db 0).
SYNCED_DB, SCRATCH_DBS = 5, (6, 7, 8, 9, 10)


@dataclass
class SandboxServer:
    url: str
    webhook_port: int  # the port the first gateway will listen on (the hotline pushes there)

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/{channel}"

    def stats(self) -> dict[str, int]:
        """Requests served so far per channel (everything but ``/__sandbox``)."""
        return {channel: int(httpx.get(f"{self.url}/{channel}/__sandbox/stats").json()["total"])
                for channel in CHANNELS}

    def faults(self, channel: str, **faults: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/{channel}/__sandbox/faults", json=faults)
        answer.raise_for_status()
        return dict(answer.json())

    def arrive_all(self) -> None:
        httpx.post(f"{self.url}/__sandbox/arrive").raise_for_status()


DEMO_PASSWORD = "demo"


def login(base_url: str, username: str, password: str = DEMO_PASSWORD, **form: str) -> str:
    """An access token of the gateway's embedded identity provider (``POST /auth/token``)."""
    answer = httpx.post(f"{base_url}/auth/token", data={"username": username, "password": password, **form},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


class Graph:
    """A GraphQL client for one gateway (synchronous: tests stay plain functions).

    ``token`` is sent as ``Authorization: Bearer``; :meth:`as_user` logs in once per account and
    keeps the token for every client derived from this one.
    """

    def __init__(self, base_url: str, token: str | None = None, *, username: str | None = None,
                 tokens: dict[str, str] | None = None, settings: Settings | None = None) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/graphql"
        self.token = token
        self.username = username
        self.settings = settings  # the gateway's, when the test started it
        self._tokens = {} if tokens is None else tokens

    def as_user(self, username: str) -> Graph:
        """This gateway as the demo account ``username`` (password ``demo``)."""
        token = self._tokens.get(username)
        if token is None:
            token = self._tokens[username] = login(self.base_url, username)
        return Graph(self.base_url, token, username=username, tokens=self._tokens, settings=self.settings)

    def with_token(self, token: str | None) -> Graph:
        return Graph(self.base_url, token, tokens=self._tokens, settings=self.settings)

    def anonymous(self) -> Graph:
        return self.with_token(None)

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth_headers, **kwargs.pop("headers", {})}
        return httpx.post(self.url, json={"query": query, "variables": variables or {}}, timeout=30,
                          headers=headers, **kwargs)

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer's JSON; fails the test on a non-200 answer."""
        answer = self.post(query, variables)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer's data; fails the test when there are errors."""
        body = self.query(query, variables)
        assert not body.get("errors"), body["errors"]
        return dict(body["data"])


def redis_db_url(redis_url: str, db: int) -> str:
    """``redis_url`` with another database number, flushed."""
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def write_channels_file(directory: Path, sandbox_url: str, *, poll_interval: float = 1.0,
                        only: tuple[str, ...] | None = None, urls: dict[str, str] | None = None) -> Path:
    """The default channels file pointed at ``sandbox_url`` (or ``urls[key]``), with short polls."""
    document = yaml.safe_load(DEFAULT_CHANNELS_FILE.read_text(encoding="utf-8"))
    entries = []
    for entry in document["channels"]:
        if entry["key"] not in (only or CHANNELS):
            continue
        entry["base_url"] = (urls or {}).get(entry["key"]) or entry["base_url"].replace(
            "${MINSHENG_SANDBOX_URL}", sandbox_url)
        entry["poll_interval"] = poll_interval
        options = entry.get("options") or {}
        for name, value in options.items():  # spec files stay where the default file refers to them
            if name.endswith("_file"):
                options[name] = str(DEFAULT_CHANNELS_FILE.parent / value)
        entries.append(entry)
    path = directory / "channels.yaml"
    path.write_text(yaml.safe_dump({"channels": entries}, allow_unicode=True), encoding="utf-8")
    return path


def gateway_settings(redis_url: str | None, channels_file: Path, sandbox_url: str, *, port: int | None = None,
                     sync: bool = True, **overrides: Any) -> Settings:
    port = port or free_port()
    overrides.setdefault("audit_path", Path(tempfile.mkdtemp(prefix="minsheng-audit-")) / "audit.jsonl")
    overrides.setdefault("auto_dispatch", False)  # the shared sandbox must not receive automatic write-backs
    # every test client is 127.0.0.1: a shared per-IP budget would throttle the suite, so tests that
    # mean to see the rate limiter turn it on themselves
    overrides.setdefault("rate_limit_operations", 0)
    overrides.setdefault("rate_limit_root_fields", 0)
    return Settings(redis_url=redis_url, channels_file=channels_file, sandbox_enabled=False,
                    sandbox_base_url=sandbox_url, port=port, sync=sync, **overrides)


def wait_ready(base_url: str, timeout: float = 90.0) -> dict[str, Any]:
    """Wait for ``/readyz`` to answer 200; returns its report."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base_url}/readyz", timeout=10)
        last = answer.json()
        if answer.status_code == 200:
            return dict(last)
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not ready after {timeout}s: {last}")


@contextlib.contextmanager
def start_gateway(settings: Settings, *, ready: bool = True) -> Iterator[Graph]:
    """Serve a gateway with ``settings`` on its port (real uvicorn); wait until ready.

    Yields a client logged in as ``center`` (once ready; a gateway not waited for yields an anonymous one).
    """
    with serve(create_app(settings), port=settings.port) as url:
        if ready:
            wait_ready(url)
        graph = Graph(url, settings=settings)
        yield graph.as_user("center") if ready else graph


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    from sandbox.app import create_sandbox

    webhook_port = free_port()
    app = create_sandbox(SEED, webhook_urls={"hotline12345": f"http://127.0.0.1:{webhook_port}/hooks/hotline12345"})
    with serve(app) as url:
        server = SandboxServer(url, webhook_port)
        server.arrive_all()
        yield server


@pytest.fixture(scope="module")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def synced_redis_url(sandbox: SandboxServer, redis_url: str, e2e_dir: Path) -> str:
    """A database filled by one complete sync of every sandbox channel."""
    url = redis_db_url(redis_url, SYNCED_DB)
    settings = gateway_settings(url, write_channels_file(e2e_dir, sandbox.url), sandbox.url,
                                port=sandbox.webhook_port)
    with start_gateway(settings):
        pass
    return url


@pytest.fixture(scope="module")
def gateway(sandbox: SandboxServer, synced_redis_url: str, e2e_dir: Path) -> Iterator[Graph]:
    """A gateway on the synced database with sync off: the sandbox sees only what queries cause."""
    settings = gateway_settings(synced_redis_url, e2e_dir / "channels.yaml", sandbox.url, sync=False)
    with start_gateway(settings) as graph:
        yield graph


@pytest.fixture
def graph(gateway: Graph) -> Graph:
    return gateway.as_user("center")

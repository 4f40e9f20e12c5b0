"""Real processes for the benchmarks: redis-server, the sandbox channels and the gateway, on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from sandbox.world import week_start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, timeout: float, ok: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code in ok:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout}s: {last}")


@dataclass
class Stack:
    redis_url: str
    sandbox_url: str
    gateway_url: str
    gateway_pid: int
    token: str = ""   # an access token of the demo account ``center`` (the graph needs a login)
    seed: int = 7     # the sandbox world's
    world_at: str = ""  # the instant the sandbox world was generated at (ISO 8601)

    @property
    def headers(self) -> dict[str, str]:
        """What every GraphQL request of the benchmarks sends: the bearer token."""
        return {"Authorization": f"Bearer {self.token}"}


DEMO_PASSWORD = "demo"  # noqa: S105 (the demo accounts' published password)


def login(gateway_url: str, username: str = "center", password: str = DEMO_PASSWORD) -> str:
    """An access token from the gateway's embedded identity provider (``POST /auth/token``)."""
    answer = httpx.post(f"{gateway_url}/auth/token", data={"username": username, "password": password},
                        timeout=30)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    # stderr goes to a file: a pipe nobody reads fills up after 64 KiB of log lines and then blocks
    # the process on its next write (the gateway stopped answering mid-benchmark that way).
    log = tempfile.NamedTemporaryFile(prefix="minsheng-stderr-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield process
    finally:
        log.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found (make bench installs Debian's package)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir, _process(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--appendonly", "yes",
         "--appendfsync", "always", "--save", ""]):
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def stack(seed: int = 7, now: datetime | None = None) -> Iterator[Stack]:
    """redis-server, `minsheng sandbox` and `minsheng up` as three processes, ready to query.

    The sandbox world is generated at ``now``, by default the start of this week (``week_start``): the
    same world, moved by whole weeks, whatever day the bench runs on, so figures compare across days.
    """
    minsheng = str(Path(sys.executable).with_name("minsheng"))
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    at = (now or week_start()).isoformat()
    with redis_server() as redis_url, _process(
            [minsheng, "sandbox", "--port", str(sandbox_port), "--seed", str(seed), "--now", at]):
        _wait(f"{sandbox_url}/__sandbox/stats", 60)
        env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(gateway_port), "MINSHENG_SANDBOX": "0",
               "MINSHENG_SANDBOX_URL": sandbox_url, "MINSHENG_LOG_LEVEL": "warning",
               "MINSHENG_AUDIT_PATH": str(Path(tempfile.gettempdir()) / f"minsheng-bench-{gateway_port}.log")}
        with _process([minsheng, "up", "--port", str(gateway_port)], env=env) as gateway:
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            _wait(f"{gateway_url}/readyz", 120)
            yield Stack(redis_url, sandbox_url, gateway_url, gateway.pid, login(gateway_url), seed, at)

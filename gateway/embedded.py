"""What the composition root needs besides the domain: the Redis client, and hosting sub-apps.

* :func:`redis_client` — the configured Redis (its commands packed by hiredis), or the embedded
  in-process store (fakeredis with Lua) when ``REDIS_URL`` is not set;
* :class:`LateMount` — a mount point whose app is built in the lifespan (the sandbox);
* :func:`sub_app_lifespan` — runs a mounted app's own lifespan, which Starlette does not do for
  mounts;
* :func:`wait_until_listening` — waits for our own port before the in-process sandbox is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LateMount", "redacted_url", "redis_client", "sub_app_lifespan", "wait_until_listening"]

log = logging.getLogger(__name__)


def redis_client(url: str | None) -> Any:
    """A Redis client for ``url``; without one, the embedded in-process store (and a log line saying so)."""
    if url:
        log.info("store: Redis at %s", redacted_url(url))
        client = aioredis.from_url(url)
        pool = client.connection_pool
        pool.connection_class = _hiredis_packing(pool.connection_class)  # tcp, tls or unix, as the URL says
        return client
    import fakeredis

    log.warning("store: REDIS_URL is not set, so the gateway runs on an embedded in-process store "
                "(fakeredis). Data lives only as long as this process; set REDIS_URL for a real Redis.")
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


class _HiredisPacking:
    """Packs commands with hiredis (through redis-py's own serializer, the one its synchronous client
    uses, for what hiredis does not take as it is); redis-py's asyncio client packs them in Python,
    which cost a tenth of an ingest (each argument encoded and joined one by one).

    It also bounds each write with :func:`asyncio.timeout` where redis-py uses :func:`asyncio.wait_for`
    (whenever ``socket_timeout`` is set, 5 s by default in redis-py 8): on Python 3.11 ``wait_for``
    drops a cancellation that arrives as the write completes (see :mod:`casework.cancellation`), and
    it runs every write as a task of its own.
    """

    _serializer = HiredisRespSerializer()
    socket_timeout: float | None

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " not in args[0]:
            # hiredis takes the arguments as they are; the serializer's first looks at each of them
            # (~200 a new case, in the index moves) cost as much as the packing itself
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # an argument hiredis refuses (a bytearray): the serializer converts it
                pass
        return self._serializer.pack(*args)  # type: ignore[no-any-return]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        limit = self.socket_timeout
        if not limit:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        self.socket_timeout = None  # so that the base class writes at once, under our timeout
        try:
            async with asyncio.timeout(limit):
                await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except TimeoutError:  # the base class disconnected on its way out
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


_PACKING: dict[type[Any], type[Any]] = {}


def _hiredis_packing(base: type[Any]) -> type[Any]:
    """``base`` (the pool's connection class) packing its commands with hiredis; one class per base."""
    if base not in _PACKING:
        _PACKING[base] = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return _PACKING[base]


def redacted_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***`` (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


class LateMount:
    """An ASGI app to mount now whose real app arrives later (503 until then)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            if scope["type"] == "http":
                await JSONResponse({"error": "not started"}, status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def sub_app_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Drive ``app``'s ASGI lifespan: startup on enter, shutdown on exit."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def receive() -> Message:
        return await to_app.get()

    async def send(message: Message) -> None:
        await from_app.put(message)

    async def run() -> None:
        await app(scope, receive, send)

    task = asyncio.create_task(run())
    await to_app.put({"type": "lifespan.startup"})
    started = await _next_message(from_app, task)
    if started is not None and started["type"] == "lifespan.startup.failed":
        raise RuntimeError(f"sub-app failed to start: {started.get('message', '')}")
    try:
        yield
    finally:
        if not task.done():
            await to_app.put({"type": "lifespan.shutdown"})
            await _next_message(from_app, task)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


async def _next_message(queue: asyncio.Queue[Message], task: asyncio.Task[Any]) -> Message | None:
    """The app's next lifespan message, or ``None`` when the app does not speak lifespan."""
    getter = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    return None


async def wait_until_listening(url: str, patience: float = 30.0) -> bool:
    """Wait until something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False

"""The gateway's Redis client packs commands with hiredis: what reaches Redis is what redis-py sends."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.embedded import redis_client
from tests.servers import free_port


async def test_commands_reach_redis_as_redis_py_packs_them(redis_url: str) -> None:
    client = redis_client(redis_url)
    assert client.connection_pool.connection_class.__name__ == "HiredisConnection"
    try:
        await client.flushdb()
        await client.zadd("民声:z", {"东能华府": float("-inf"), "b": 0.1 + 0.2, "c": 1.0, "d": 7})
        assert await client.zrange("民声:z", 0, -1, withscores=True) == [
            ("东能华府".encode(), float("-inf")), (b"b", 0.30000000000000004), (b"c", 1.0), (b"d", 7.0)]
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset("民声:h", mapping={"标题": "噪音扰民", "n": 3, "raw": b"\x00\xff",
                                         "view": memoryview(b"mv"), "array": bytearray(b"ba")})
            pipe.hgetall("民声:h")
            _, stored = await pipe.execute()
        assert stored == {"标题".encode(): "噪音扰民".encode(), b"n": b"3", b"raw": b"\x00\xff",
                          b"view": b"mv", b"array": b"ba"}
        assert "maxmemory" in {k.decode() if isinstance(k, bytes) else k
                               for k in await client.config_get("maxmemory")}  # 'CONFIG GET': two words
        with pytest.raises(DataError):
            await client.set("k", None)  # type: ignore[arg-type]
    finally:
        await client.aclose()


async def test_a_tls_or_socket_url_keeps_its_connection_kind() -> None:
    for url, kind in (("rediss://localhost:6380/0", aioredis.SSLConnection),
                      ("unix:///tmp/redis.sock?db=0", aioredis.UnixDomainSocketConnection),
                      ("redis://localhost:6379/0", aioredis.Connection)):
        client = redis_client(url)
        assert issubclass(client.connection_pool.connection_class, kind), url
        await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (it gets stopped), and its URL."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait()


async def test_a_write_the_server_does_not_take_times_out(
        own_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    """The gateway's client bounds a write by ``socket_timeout`` (under asyncio.timeout, not
    redis-py's wait_for): a stopped redis-server whose socket buffers fill answers TimeoutError,
    and the client works again once the server does."""
    url, server = own_redis
    client = redis_client(f"{url}?socket_timeout=0.5")
    try:
        for _ in range(100):
            with contextlib.suppress(ConnectionError):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        server.send_signal(signal.SIGSTOP)
        with pytest.raises(RedisTimeoutError, match="writing"):
            await client.set("民声:大", b"x" * 64_000_000)  # more than the sockets' buffers hold
        server.send_signal(signal.SIGCONT)
        assert await client.set("民声:小", "1")
    finally:
        await client.aclose()

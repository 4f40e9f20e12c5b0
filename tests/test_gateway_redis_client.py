"""The gateway's Redis client packs commands with hiredis: what reaches Redis is what redis-py sends."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from gateway.embedded import redis_client


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
                                         "view": memoryview(b"mv")})
            pipe.hgetall("民声:h")
            _, stored = await pipe.execute()
        assert stored == {"标题".encode(): "噪音扰民".encode(), b"n": b"3", b"raw": b"\x00\xff",
                          b"view": b"mv"}
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

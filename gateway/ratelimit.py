"""Rate limits per viewer, kept in Redis so that every replica counts against the same budget.

One HTTP request can carry many operations (a batch) and one operation many root fields, each of
which may fan out to the channel systems; so the budget counts both, per fixed window:
``operations`` and ``root fields`` (fragments expanded) per ``window`` seconds. The client is the
authenticated viewer (its subject) or, for anyone else, the client's IP address. Over budget, the
operation is not executed and answers ``RATE_LIMITED`` with ``retryAfter`` (HTTP 429 with
``Retry-After`` from ``/graphql``).

Fixed windows allow a burst of twice the budget across a window's edge; that is the price of one
pipelined round trip per operation. If Redis does not answer, the operation goes ahead (a limiter
must not turn a Redis hiccup into an outage) and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from redis.exceptions import RedisError
from strawberry.extensions import SchemaExtension

from casework import keys
from schema.limits import count_root_fields

__all__ = ["RateLimit", "RateLimiter", "client_key"]

log = logging.getLogger(__name__)


@dataclass
class RateLimiter:
    """The shared budget; ``redis`` is set by the app's lifespan (``None``: not limiting yet)."""

    operations: int = 600
    root_fields: int = 2000
    window: int = 60
    clock: Callable[[], float] = time.time
    redis: Any = None

    @property
    def enabled(self) -> bool:
        return self.redis is not None and (self.operations > 0 or self.root_fields > 0)

    async def charge(self, who: str, root_fields: int) -> float | None:
        """Count one operation of ``root_fields``; the seconds to wait when over budget, else ``None``."""
        if not self.enabled:
            return None
        now = self.clock()
        window = int(now // self.window)
        key = keys.rate_limit(who, window)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, "ops", 1)
                pipe.hincrby(key, "fields", root_fields)
                pipe.expire(key, self.window * 2)
                operations, fields, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limiter: Redis failed (%s); letting the operation through", exc)
            return None
        over = (0 < self.operations < int(operations)) or (0 < self.root_fields < int(fields))
        return max(1.0, (window + 1) * self.window - now) if over else None


def client_key(context: Any) -> str:
    """Whose budget: the authenticated viewer's subject, or else the client's address."""
    viewer = getattr(context, "viewer", None)
    if viewer is not None and getattr(viewer, "authenticated", False):
        return f"v:{viewer.subject}"
    request = getattr(context, "request", None)
    client = getattr(request, "client", None)
    return f"ip:{client.host if client is not None else 'unknown'}"


class RateLimit(SchemaExtension):
    """Charges each valid operation to its client's budget before it executes."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if self.limiter.enabled and context.graphql_document is not None:
            fields = count_root_fields(context.graphql_document, context.operation_name)
            wait = await self.limiter.charge(client_key(context.context), fields)
            if wait is not None:
                error = GraphQLError("Too many requests: slow down and retry later.",
                                     extensions={"code": "RATE_LIMITED", "retryAfter": int(wait + 0.999)})
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

"""What every sandbox channel shares: request statistics, fault knobs, ticket arrival over time.

Each channel app is built with :meth:`ChannelSandbox.build`, which adds

* ``GET /__sandbox/stats`` — request counts per endpoint (route template), for N+1 checks;
* ``POST /__sandbox/faults`` — ``{"down": true}``, ``{"latency_ms": 300}``, ``{"error_rate": 0.3}``,
  ``{"rate_429": 0.3}``, ``{"retry_after": 0}`` (the Retry-After of those 429s; 1 s unless set),
  ``{"lost_reply_rate": 0.3}`` (the request is handled — a write-back applied — and then answered 500,
  as when a reply is lost), ``{"reset": true}`` (partial updates; the answer is the faults in force);
* ``GET /__sandbox/writes`` — every write-back the channel received, in order: ``{"source_id", "key"``
  (its idempotency key)``, "duplicate"}`` (a repeated key the channel answered without applying it);
* ``GET /__sandbox/truth`` — source id → ground-truth incident id, for evaluating dedup only;
* ``POST /__sandbox/arrive`` — make every pending ticket arrive now (tests use it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, fields

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.world import Ticket

SANDBOX_PREFIX = "/__sandbox"


@dataclass(slots=True)
class Faults:
    down: bool = False
    latency_ms: int = 0
    error_rate: float = 0.0
    rate_429: float = 0.0
    lost_reply_rate: float = 0.0
    retry_after: int = 1  # the Retry-After of a 429 fault, in seconds


class ChannelSandbox:
    """The state of one sandbox channel: its tickets, counters and faults.

    Args:
        key: the channel key, e.g. ``hotline12345``.
        tickets: this channel's tickets from the world, in any order.
        seed: seeds the fault dice so fault runs repeat.
    """

    def __init__(self, key: str, tickets: Iterable[Ticket], *, seed: int = 7) -> None:
        self.key = key
        self.tickets: dict[str, Ticket] = {t.source_id: t for t in tickets}
        self.stats: Counter[str] = Counter()
        self.faults = Faults()
        self.started = time.monotonic()
        self.all_arrived = False
        self.writes: list[dict[str, object]] = []  # the write-backs received, for exactly-once checks
        self._dice = random.Random(seed)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def visible(self) -> list[Ticket]:
        """Tickets that have arrived by now, oldest update first."""
        elapsed = self.elapsed()
        shown = [t for t in self.tickets.values() if self.all_arrived or t.arrives_after <= elapsed]
        return sorted(shown, key=lambda t: (t.updated_at, t.source_id))

    def get(self, source_id: str) -> Ticket | None:
        ticket = self.tickets.get(source_id)
        if ticket is None or not (self.all_arrived or ticket.arrives_after <= self.elapsed()):
            return None
        return ticket

    def record_write(self, source_id: str, key: str, *, duplicate: bool) -> None:
        """A channel's write-back handler reports each write-back it received (applied or a repeat)."""
        self.writes.append({"source_id": source_id, "key": key, "duplicate": duplicate})

    def build(self, routes: list[BaseRoute], *, middleware_wraps: Callable[[ASGIApp], ASGIApp] | None = None
              ) -> Starlette:
        """The channel's ASGI app: its own routes plus the ``/__sandbox`` endpoints and fault injection."""
        own = [
            Route(f"{SANDBOX_PREFIX}/stats", self._stats, methods=["GET"]),
            Route(f"{SANDBOX_PREFIX}/faults", self._set_faults, methods=["POST", "GET"]),
            Route(f"{SANDBOX_PREFIX}/truth", self._truth, methods=["GET"]),
            Route(f"{SANDBOX_PREFIX}/arrive", self._arrive, methods=["POST"]),
            Route(f"{SANDBOX_PREFIX}/writes", self._writes, methods=["GET"]),
        ]
        app = Starlette(routes=own + routes)
        app.state.sandbox = self
        inner: ASGIApp = app if middleware_wraps is None else middleware_wraps(app)
        outer = _FaultsAndStats(inner, self, routes)
        # keep ``.state`` reachable on the outermost app for callers that mount it
        outer.state = app.state  # type: ignore[attr-defined]
        return outer  # type: ignore[return-value]

    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"channel": self.key, "requests": dict(self.stats),
                             "total": sum(self.stats.values()), "tickets": len(self.visible())})

    async def _set_faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            if body.get("reset"):
                self.faults = Faults()
            for name in (f.name for f in fields(Faults)):  # every fault the dataclass knows, no list to keep
                if name in body:
                    setattr(self.faults, name, type(getattr(self.faults, name))(body[name]))
        return JSONResponse(asdict(self.faults))

    async def _truth(self, request: Request) -> Response:
        return JSONResponse({t.source_id: t.incident_id for t in self.tickets.values()})

    async def _writes(self, request: Request) -> Response:
        return JSONResponse(self.writes)

    async def _arrive(self, request: Request) -> Response:
        self.all_arrived = True
        return JSONResponse({"tickets": len(self.visible())})

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._dice.random() < rate


class _FaultsAndStats:
    """ASGI middleware: counts requests per route template and applies the fault knobs."""

    def __init__(self, app: ASGIApp, sandbox: ChannelSandbox, routes: list[BaseRoute]) -> None:
        self.app = app
        self.sandbox = sandbox
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope).startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        self.sandbox.stats[self._endpoint(scope)] += 1
        fault = await self._fault()
        if fault is not None:
            await fault(scope, receive, send)
            return
        if self.sandbox.roll(self.sandbox.faults.lost_reply_rate):
            await self._lose_reply(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lose_reply(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the request (a write is applied), then answer 500 instead: the caller cannot know."""
        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await Response("reply lost (sandbox fault)", status_code=500)(scope, receive, send)

    def _endpoint(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return f"{scope['method']} {getattr(route, 'path', scope['path'])}"
        return f"{scope['method']} {scope['path']}"

    async def _fault(self) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        faults, sandbox = self.sandbox.faults, self.sandbox
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.down:
            return Response("channel down (sandbox fault)", status_code=503)
        if sandbox.roll(faults.rate_429):
            return Response("too many requests (sandbox fault)", status_code=429,
                            headers={"Retry-After": str(faults.retry_after)})
        if sandbox.roll(faults.error_rate):
            return Response("internal error (sandbox fault)", status_code=500)
        return None


def _route_path(scope: Scope) -> str:
    """The path below the mount point: Starlette's ``Mount`` keeps the full path and sets ``root_path``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path

"""All eight sandbox channel systems in one ASGI app, over one generated world.

Each channel is mounted under ``/<key>/`` (``/hotline12345/``, ``/mayor/``, ``/court/``, ``/legalaid/``,
``/petition/``, ``/open311/``, ``/shuji/``, ``/juzhang/``) with its own ``/<key>/__sandbox/*`` endpoints.
Across all of them:

* ``GET /__sandbox/truth`` — ground truth for evaluating dedup only:
  ``{"incidents": {incident_id: [{"channel", "source_id"}]}, "splits": {incident_id: "tune"|"holdout"},
  "hard_negatives": {incident_id: incident_id it imitates}}``;
* ``GET /__sandbox/stats`` — every channel's request counts: ``{"channels": {key: stats}, "total": n}``;
* ``POST /__sandbox/faults`` — ``{"channel": key | "all", "down": true, …}`` set that channel's fault knobs
  (see :mod:`sandbox.kit`); ``GET`` shows every channel's;
* ``POST /__sandbox/arrive`` — every pending ticket of every channel arrives now.

Run it alone with ``python -m sandbox --port 8100 [--seed 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message

from sandbox.world import CHANNELS, World, generate_world, parse_instant

__all__ = ["create_sandbox", "main"]

log = logging.getLogger(__name__)


def create_sandbox(seed: int = 7, now: datetime | None = None, *, webhook_urls: dict[str, str] | None = None,
                   incidents: int = 400, world: World | None = None) -> Starlette:
    """The channel apps over one world generated from ``seed`` at ``now``, each under ``/<key>``.

    Args:
        webhook_urls: channel key → where that channel pushes its webhooks (only channels whose
            ``create_app`` takes ``webhook_url``, i.e. hotline12345).
        world: serve this world instead of generating one (tests).
    """
    world = world or generate_world(seed, now, incidents=incidents)
    channels = _channel_apps(world, seed, webhook_urls or {})
    hub = _Hub(world, channels)
    routes: list[BaseRoute] = [
        Route("/", hub.index, methods=["GET"]),
        Route("/__sandbox/truth", hub.truth, methods=["GET"]),
        Route("/__sandbox/stats", hub.stats, methods=["GET"]),
        Route("/__sandbox/faults", hub.faults, methods=["GET", "POST"]),
        Route("/__sandbox/arrive", hub.arrive, methods=["POST"]),
        *(Mount(f"/{key}", app=app) for key, app in channels.items()),
    ]
    app = Starlette(routes=routes, lifespan=lambda _: _lifespans(list(channels.values())))
    app.state.world = world
    app.state.channels = channels
    return app


def _channel_apps(world: World, seed: int, webhook_urls: dict[str, str]) -> dict[str, ASGIApp]:
    apps: dict[str, ASGIApp] = {}
    for key in CHANNELS:
        name = f"sandbox.{key}.app"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name not in (name, f"sandbox.{key}"):
                raise
            log.warning("sandbox: channel %s is not built yet (no module %s); not mounted", key, name)
            continue
        options: dict[str, Any] = {}
        if key in webhook_urls and "webhook_url" in inspect.signature(module.create_app).parameters:
            options["webhook_url"] = webhook_urls[key]
        apps[key] = module.create_app(world.tickets_for(key), seed=seed, **options)
    return apps


class _Hub:
    """The cross-channel ``/__sandbox`` endpoints; they reach each channel in-process over ASGI."""

    def __init__(self, world: World, channels: dict[str, ASGIApp]) -> None:
        self.world = world
        self.channels = channels

    async def index(self, request: Request) -> Response:
        return JSONResponse({"seed": self.world.seed, "now": self.world.now.isoformat(),
                             "channels": {key: f"/{key}/" for key in self.channels},
                             "tickets": {key: len(self.world.tickets_for(key)) for key in self.channels}})

    async def truth(self, request: Request) -> Response:
        return JSONResponse(self.world.evaluation())

    async def stats(self, request: Request) -> Response:
        answers = await self._each("GET", "/__sandbox/stats", self.channels)
        total = sum(int(a.get("total", 0)) for a in answers.values())
        return JSONResponse({"channels": answers, "total": total})

    async def faults(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"channels": await self._each("GET", "/__sandbox/faults", self.channels)})
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("channel") not in (*self.channels, "all"):
            return JSONResponse({"error": 'want a JSON object with "channel": one of the channels or "all"',
                                 "channels": list(self.channels)}, status_code=400)
        key = body.pop("channel")
        targets = self.channels if key == "all" else {key: self.channels[key]}
        answers = await self._each("POST", "/__sandbox/faults", targets, body)
        return JSONResponse({"channels": answers} if key == "all" else {"channel": key, **answers[key]})

    async def arrive(self, request: Request) -> Response:
        return JSONResponse({"channels": await self._each("POST", "/__sandbox/arrive", self.channels)})

    async def _each(self, method: str, path: str, targets: dict[str, ASGIApp],
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
        answers = await asyncio.gather(*(_call(app, method, path, body) for app in targets.values()))
        return dict(zip(targets, answers, strict=True))


async def _call(app: ASGIApp, method: str, path: str, body: dict[str, Any] | None) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        response = await client.request(method, path, json=body)
    return response.json()


@contextlib.asynccontextmanager
async def _lifespans(apps: Sequence[ASGIApp]) -> AsyncIterator[None]:
    """Run every mounted channel's own lifespan (Starlette does not do that for mounts)."""
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(_lifespan_of(app))
        yield


@contextlib.asynccontextmanager
async def _lifespan_of(app: ASGIApp) -> AsyncIterator[None]:
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await from_app.put(message)

    async def run() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        await app(scope, to_app.get, send)

    task = asyncio.create_task(run())
    await to_app.put({"type": "lifespan.startup"})
    started = await _reply(from_app, task)
    if started is not None and started["type"] == "lifespan.startup.failed":
        raise RuntimeError(f"a sandbox channel failed to start: {started.get('message', '')}")
    try:
        yield
    finally:
        if not task.done():
            await to_app.put({"type": "lifespan.shutdown"})
            await _reply(from_app, task)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def _reply(queue: asyncio.Queue[Message], task: asyncio.Task[Any]) -> Message | None:
    """The app's next lifespan message, or ``None`` when it does not speak lifespan."""
    getter = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sandbox --port N [--seed S] [--webhook KEY=URL]``: serve all channels on 127.0.0.1."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--incidents", type=int, default=400)
    parser.add_argument("--now", type=_instant, metavar="ISO",
                        help="generate the world at this instant, not the current time (a repeatable world)")
    parser.add_argument("--webhook", action="append", default=[], metavar="KEY=URL",
                        help="where a channel pushes webhooks, e.g. hotline12345=http://127.0.0.1:8000/hooks/hotline12345")
    args = parser.parse_args(argv)
    webhooks = dict(item.partition("=")[::2] for item in args.webhook)
    if any(not key or not url for key, url in webhooks.items()):
        parser.error("--webhook wants KEY=URL")
    app = create_sandbox(args.seed, args.now, webhook_urls=webhooks, incidents=args.incidents)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


def _instant(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

"""The gateway's plain HTTP routes: the dashboard's page, health, readiness, metrics and webhooks."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from auth.errors import ReplayRejected
from auth.replay import ReplayGuard, request_fingerprint
from casework.channels import ChannelRuntime
from casework.intake import Intake
from connectors import WebhookRejected
from gateway.metrics import Metrics
from resolvers.context import Resources

__all__ = ["DASHBOARD", "plain_routes", "readiness"]

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1 << 20
_SIGNING_WORDS = ("sign", "timestamp", "nonce", "date", "digest")
DASHBOARD = Path(__file__).with_name("dashboard")
"""The command-centre dashboard's static files (HTML, CSS, ES modules; no build step)."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def readiness(resources: Resources, intake: Intake | None) -> dict[str, Any]:
    """The readiness report: overall and per channel (start-up state, health, last sync, lag, counts).

    Without an intake (sync off) the gateway serves what is stored and is ready at once. With
    several replicas, ``replica`` names this one and each channel's ``syncedBy`` the replica holding
    its sync lease (this one, another, or nobody yet).
    """
    counts = await resources.store.count_by_channel()
    states = intake.readiness() if intake is not None else {}
    here = intake.leases.holder if intake is not None and intake.leases is not None else None
    channels = []
    for runtime in resources.channels.values():
        key = runtime.config.key
        health = runtime.health(counts.get(key, 0), await resources.store.quarantine_count(key))
        synced_by = _synced_by(runtime, here) if intake is not None else None
        channels.append({"key": key, "name": runtime.config.name, "sync": states.get(key, "off"),
                         "syncedBy": synced_by,
                         "status": health.status.value,
                         "lastSyncAt": _iso(health.last_sync_at), "lagSeconds": health.lag_seconds,
                         "lastError": health.last_error, "breakerOpen": health.breaker_open,
                         "cases": health.cases, "quarantined": health.quarantined})
    return {"ready": intake is None or intake.ready(), "replica": here, "channels": channels}


def _synced_by(runtime: ChannelRuntime, here: str | None) -> str | None:
    if runtime.synced_by is not None:
        return runtime.synced_by
    return here if runtime.sync_attempts else None


async def landing(request: Request) -> Response:
    # The dashboard is the landing page; its assets are under /dashboard (mounted in gateway/app.py).
    return FileResponse(DASHBOARD / "index.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "resources", None) is None:
        return JSONResponse({"ready": False, "channels": []}, status_code=503)
    report = await readiness(state.resources, state.intake if state.sync else None)
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    if getattr(request.app.state, "resources", None) is not None:
        await registry.refresh(request.app.state.resources)
    return Response(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def webhook(request: Request) -> Response:
    channel = request.path_params["channel"]
    state = request.app.state
    if state.resources.channels.get(channel) is None:
        return JSONResponse({"error": f"no channel {channel!r}"}, status_code=404)
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        return JSONResponse({"error": "body too large"}, status_code=413)
    headers = dict(request.headers)

    async def not_a_replay() -> None:  # after the connector checked signature and timestamp
        guard: ReplayGuard | None = state.resources.replay
        if guard is not None:
            await guard.accept(channel, request_fingerprint(body, headers, _signing_headers(headers)))

    try:
        await state.intake.receive_webhook(channel, headers, body, accept=not_a_replay)
    except (WebhookRejected, ReplayRejected) as exc:
        state.metrics.webhooks.labels(channel, "rejected").inc()
        log.warning("webhook for %s rejected: %s", channel, exc)
        return JSONResponse({"error": "webhook rejected"}, status_code=401)
    state.metrics.webhooks.labels(channel, "accepted").inc()
    return JSONResponse({"accepted": True}, status_code=202)


def _signing_headers(headers: dict[str, str]) -> list[str]:
    """The headers that make a pushed request unique (signature, timestamp, nonce), whatever their names."""
    return [name for name in headers if any(word in name.lower() for word in _SIGNING_WORDS)]


def plain_routes() -> list[BaseRoute]:
    return [
        Route("/", landing, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/hooks/{channel}", webhook, methods=["POST"]),
    ]

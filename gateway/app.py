"""The composition root: settings in, a Starlette app out.

``create_app`` wires the routes; the lifespan builds the shared resources — Redis, reference data,
the event log, the case store, login (identity hasher, audit log, the embedded identity provider,
the authenticator), the channels (entered), the intake's sync loops, the metrics and, for the demo,
the sandbox channels mounted under ``/sandbox`` — and passes them down through ``app.state``.
Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from auth.audit import AuditLog
from auth.identity import IdentityHasher
from auth.replay import ReplayGuard
from casework.channels import ChannelSet
from casework.clusterbook import StoreClusters
from casework.clusters import ClusterStore
from casework.eventfeed import EventFeed, running
from casework.events import EventLog
from casework.intake import Intake
from casework.reference import Reference
from casework.store import CaseStore
from casework.synclease import SyncLeases, replica_name
from connectors import Connector, registry
from gateway.channels import load_channels
from gateway.dispatching import dispatching, stop_tasks
from gateway.embedded import LateMount, redacted_url, redis_client, sub_app_lifespan, wait_until_listening
from gateway.graphql_http import GraphQLEndpoint, HttpPolicy
from gateway.graphql_sse import EventStreams
from gateway.graphql_ws import GraphQLSocket
from gateway.login import login, login_routes
from gateway.metrics import MeteredIntake, Metrics, MetricsMiddleware, OperationMetrics
from gateway.ratelimit import RateLimit, RateLimiter
from gateway.routes import DASHBOARD, plain_routes
from gateway.settings import Settings
from resolvers.context import Limits, Resources
from schema import SchemaOptions, build_schema

__all__ = ["create_app", "installed_connectors"]

log = logging.getLogger("minsheng")


def installed_connectors() -> dict[str, type[Connector]]:
    """Every connector registered in the ``minsheng.connectors`` entry-point group that loads."""
    found: dict[str, type[Connector]] = {}
    for name in sorted(registry.available()):
        try:
            found[name] = registry.load(name)
        except Exception as exc:  # one broken plug-in must not take the graph down
            log.error("connector %r could not be loaded: %s", name, exc)
    return found


def create_app(settings: Settings | None = None) -> Starlette:
    """The gateway as an ASGI app; ``settings`` default to the environment's."""
    settings = settings or Settings()
    metrics = Metrics()
    limiter = RateLimiter(operations=settings.rate_limit_operations,
                          root_fields=settings.rate_limit_root_fields, window=settings.rate_limit_window)
    schema = build_schema(installed_connectors(), _schema_options(settings),
                          extensions=[lambda: OperationMetrics(metrics), lambda: RateLimit(limiter)])
    sandbox_mount = LateMount()
    policy = HttpPolicy(max_body_bytes=settings.max_body_bytes, execution_timeout=settings.execution_timeout,
                        csrf_prevention=settings.csrf_prevention)
    http_graphql = GraphQLEndpoint(schema, production=settings.production, policy=policy)
    streams = EventStreams(schema, http_graphql, allowed_origins=settings.allowed_origins,
                           keepalive=settings.ws_keepalive or 15.0)
    routes: list[Any] = [Route("/graphql", streams),
                         WebSocketRoute("/graphql", GraphQLSocket(
                             schema, allowed_origins=settings.allowed_origins,
                             init_timeout=settings.ws_init_timeout, keepalive=settings.ws_keepalive,
                             max_subscriptions=settings.ws_max_subscriptions)),
                         *plain_routes(), *login_routes(settings),
                         Mount("/dashboard", app=StaticFiles(directory=DASHBOARD), name="dashboard")]
    if settings.sandbox:
        routes.append(Mount("/sandbox", app=sandbox_mount))
    app = Starlette(routes=routes, lifespan=lambda app: _lifespan(app, settings, sandbox_mount),
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.schema = schema
    app.state.rate_limiter = limiter
    app.state.resources = None
    app.state.idp = None
    return app


def _schema_options(settings: Settings) -> SchemaOptions:
    return SchemaOptions(production=settings.production, max_depth=settings.max_query_depth,
                         max_aliases=settings.max_aliases, max_tokens=settings.max_tokens,
                         max_root_fields=settings.max_root_fields, max_cost=settings.max_cost,
                         default_list_size=settings.default_list_size, max_batch=settings.max_batch)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette, settings: Settings, sandbox_mount: LateMount) -> AsyncIterator[None]:
    if settings.production and settings.hash_key_is_default:
        log.warning("MINSHENG_HASH_KEY is not set: personal data is hashed with the public development key")
    configs = load_channels(settings.channels_file, settings.interpolation())
    async with contextlib.AsyncExitStack() as stack:
        redis = redis_client(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        await _check_redis(redis, settings)
        app.state.rate_limiter.redis = redis
        stack.callback(setattr, app.state.rate_limiter, "redis", None)
        reference = Reference.load()
        events = EventLog(redis, maxlen=settings.events_maxlen, retention_seconds=settings.events_retention,
                          ancestors=lambda region: [r.id for r in reference.region_ancestors(region)])
        feed = await stack.enter_async_context(running(EventFeed(events)))
        hash_key = settings.hash_key.get_secret_value().encode()
        store = CaseStore(redis, reference, events=events, hash_key=hash_key)
        hasher = IdentityHasher(hash_key)
        audit = AuditLog(settings.audit_path, retention_days=settings.audit_retention_days)
        stack.push_async_callback(audit.aclose)
        auth = await stack.enter_async_context(login(settings, redis, hasher, audit))
        app.state.idp = auth.idp
        clusters = ClusterStore(redis, store, reference, events=events)
        if settings.sandbox:
            await stack.enter_async_context(_sandbox(settings, sandbox_mount))
        channels = await stack.enter_async_context(ChannelSet(configs))
        leases = SyncLeases(redis, holder=settings.replica or replica_name(), ttl=settings.sync_lease)
        intake = MeteredIntake(store, channels, app.state.metrics, clusters=clusters, leases=leases)
        parts = await stack.enter_async_context(
            dispatching(settings, redis, store, events, channels, clusters=StoreClusters(clusters)))
        app.state.resources = Resources(
            store=store, reference=reference, events=events, channels=channels,
            limits=Limits(max_page_size=settings.max_page_size, source_timeout=settings.source_timeout,
                          source_cache_ttl=settings.source_cache_ttl),
            observe_upstream=app.state.metrics.observe_upstream, authenticator=auth.authenticator,
            audit=audit, hasher=hasher, replay=ReplayGuard(redis, window=settings.webhook_window),
            clusters=clusters, feed=feed, dispatcher=parts.dispatcher, outbox=parts.outbox,
            whistles=parts.whistles)
        app.state.intake = intake
        app.state.sync = settings.sync
        if settings.sync:
            task = asyncio.create_task(_run_intake(intake, settings), name="minsheng-intake")
            stack.push_async_callback(stop_tasks, [task])
        log.info("minsheng: %d channels (%s); sync %s", len(configs), ", ".join(c.key for c in configs),
                 "on" if settings.sync else "off")
        try:
            yield
        finally:
            app.state.resources = None
            app.state.idp = None


@contextlib.asynccontextmanager
async def _sandbox(settings: Settings, mount: LateMount) -> AsyncIterator[None]:
    from sandbox.app import create_sandbox

    sandbox = create_sandbox(settings.sandbox_seed,
                             webhook_urls={"hotline12345": settings.webhook_url("hotline12345")})
    mount.app = sandbox
    log.info("sandbox: six channel systems (seed %d) mounted at /sandbox", settings.sandbox_seed)
    async with sub_app_lifespan(sandbox):
        yield


async def _check_redis(redis: Any, settings: Settings) -> None:
    try:
        await redis.ping()
    except Exception as exc:
        raise RuntimeError(f"cannot reach Redis at {redacted_url(settings.redis_url or '')}: {exc}") from exc


async def _run_intake(intake: Intake, settings: Settings) -> None:
    # The in-process sandbox answers on our own port, which listens only once the lifespan is done.
    if settings.sandbox and not await wait_until_listening(settings.sandbox_url):
        log.error("the sandbox at %s never answered; syncing anyway", settings.sandbox_url)
    try:
        await intake.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the intake stopped: no channel is synced until the gateway restarts")
        raise




async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "Internal server error"}, status_code=500)

"""``/graphql`` over WebSocket: the ``graphql-transport-ws`` protocol only (never the legacy one).

Strawberry runs the protocol (operation ids, ``4400``/``4401``/``4409``/``4429`` closes, the init
timeout's ``4408``); this adds what a gateway facing department systems needs:

* **Origin check on the upgrade**: a browser's ``Origin`` must be the gateway's own or one of
  ``MINSHENG_ALLOWED_ORIGINS``; otherwise the upgrade is refused (HTTP 403) before any message.
  Clients that send no ``Origin`` (servers, department systems) are not browsers and pass.
* **Login in ``connection_init``**: ``{"Authorization": "Bearer …"}`` in the payload. No token or
  a bad one closes the socket with ``4403 Forbidden``, as the protocol says for a refused init;
  ``subscribe`` before the ack closes with ``4401 Unauthorized``.
* **Keep-alive**: the server pings every ``keepalive`` seconds; a peer that has not answered the
  previous ping by the next one is gone and the socket is closed (its subscriptions end, their
  feed taps are released).
* **A cap on operations per connection**, answered with an ``error`` whose code is ``RATE_LIMITED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    PongMessage,
    SubscribeMessage,
)
from strawberry.types.unset import UNSET

from auth.errors import InvalidToken, KeysUnavailable
from auth.viewer import Viewer
from resolvers.context import GraphContext, Resources, build_context

__all__ = ["GraphQLSocket", "origin_allowed"]

log = logging.getLogger(__name__)

KEEPALIVE_CLOSE = 4499  # graphql-ws's own "Terminated" code: the peer stopped answering pings


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """A browser's ``Origin`` must be ours (same host) or listed; no ``Origin``: not a browser."""
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if "*" in allowed or origin in {o.rstrip("/").lower() for o in allowed}:
        return True
    _scheme, _, authority = origin.partition("://")
    return bool(host) and authority == (host or "").lower()


class _Handler(BaseGraphQLTransportWSHandler[GraphContext, None]):
    """Strawberry's protocol handler plus server pings and a coded cap error."""

    keepalive: float = 15.0
    _ping_task: asyncio.Task[None] | None = None
    _awaiting_pong = False

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self.keepalive > 0 and self._ping_task is None:
            self._ping_task = asyncio.create_task(self._ping_loop())

    async def handle_pong(self, message: PongMessage) -> None:
        self._awaiting_pong = False

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        cap = self.max_subscriptions_per_connection
        if (self.connection_acknowledged and cap is not None and len(self.operations) >= cap
                and message.get("id") not in self.operations):
            await self.send_message({"id": message["id"], "type": "error", "payload": [{
                "message": f"at most {cap} subscriptions per connection",
                "extensions": {"code": "RATE_LIMITED"}}]})
            return
        await super().handle_subscribe(message)

    async def handle_task_exception(self, error: Exception) -> None:
        # A client that vanished while an event was being sent is routine (the receive loop cleans
        # up); strawberry would log a full trace for each of its subscriptions.
        if isinstance(error, WebSocketDisconnected):
            log.debug("a subscriber's socket went away mid-send")
            return
        await super().handle_task_exception(error)

    async def _ping_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.keepalive)
                if self._awaiting_pong:
                    await self.websocket.close(code=KEEPALIVE_CLOSE, reason="keep-alive timeout")
                    return
                self._awaiting_pong = True
                await self.send_message({"type": "ping"})
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket is already gone; the receive loop notices and shuts down
            return

    async def shutdown(self) -> None:
        if self._ping_task is not None:
            self._ping_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ping_task
        await super().shutdown()


class GraphQLSocket(GraphQL[GraphContext, None]):
    """The WebSocket side of ``/graphql`` (its HTTP side is :class:`gateway.graphql_http.GraphQLEndpoint`)."""

    def __init__(self, schema: BaseSchema, *, allowed_origins: Collection[str] = (),
                 init_timeout: float = 10.0, keepalive: float = 15.0, max_subscriptions: int = 20) -> None:
        super().__init__(schema, graphql_ide=None, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         connection_init_wait_timeout=timedelta(seconds=init_timeout),
                         max_subscriptions_per_connection=max_subscriptions)
        self.allowed_origins = tuple(allowed_origins)
        self.graphql_transport_ws_handler_class = type(
            "GraphQLTransportWSHandler", (_Handler,), {"keepalive": keepalive})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            socket = WebSocket(scope, receive, send)
            if not origin_allowed(socket.headers.get("origin"), socket.headers.get("host"),
                                  self.allowed_origins):
                log.info("refused a WebSocket upgrade from origin %r", socket.headers.get("origin"))
                await socket.close(code=1008)  # before accept: the server answers HTTP 403
                return
        await super().__call__(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphContext:
        resources: Resources = request.app.state.resources
        return build_context(resources, viewer=Viewer.anonymous(), request=request)

    async def on_ws_connect(self, context: GraphContext) -> Any:
        """``connection_init``: the payload's bearer token becomes the connection's viewer."""
        authenticator = context.resources.authenticator
        if authenticator is None:
            raise ConnectionRejectionError({"reason": "login is not configured"})
        try:
            viewer = await authenticator.authenticate_connection(context.connection_params)
        except (InvalidToken, KeysUnavailable) as exc:
            log.info("refused a WebSocket connection_init: %s", exc)
            raise ConnectionRejectionError({"reason": "invalid token"}) from None
        if not viewer.authenticated:
            raise ConnectionRejectionError({"reason": "log in first: Authorization: Bearer <token>"})
        context.viewer = viewer
        return UNSET

"""GraphQL over Server-Sent Events (the graphql-sse protocol, "distinct connections mode") on ``/graphql``.

For clients that cannot hold a WebSocket. A request to ``/graphql`` that accepts
``text/event-stream`` — ``POST`` with a JSON body, or ``GET`` with ``query``/``variables`` in the
URL (what a browser's ``EventSource`` can send) — runs one subscription and streams it::

    event: next
    id: 1795428221600-0
    data: {"data":{"caseEvents":{"cursor":"1795428221600-0",…}}}

    event: complete
    data:

Each ``next`` carries the event's cursor as the SSE ``id`` (when the selection asks for
``cursor``), so a reconnecting ``EventSource`` sends ``Last-Event-ID`` and resumes after it exactly
as ``after`` does (the header wins). Login is the ``Authorization: Bearer`` header (401 without),
browsers' ``Origin`` is checked as for WebSockets, idle streams get a comment line every
``keepalive`` seconds, and a client that goes away ends its subscription. Everything else is left to
``fallback`` (:class:`gateway.graphql_http.GraphQLEndpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse, validate
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry import Schema
from strawberry.types import ExecutionResult

from auth.errors import InvalidToken, KeysUnavailable
from gateway.graphql_ws import origin_allowed
from resolvers.context import Resources, build_context

__all__ = ["EventStreams", "wants_event_stream"]

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"


def wants_event_stream(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept" and EVENT_STREAM.encode() in value.lower():
            return True
    return False


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status,
                        headers=headers or None)


def _encode(result: ExecutionResult) -> tuple[str, str | None]:
    """The ``data:`` JSON of one result and the cursor to use as its SSE ``id``."""
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        body["extensions"] = result.extensions
    events = (result.data or {}).get("caseEvents") if isinstance(result.data, dict) else None
    cursor = events.get("cursor") if isinstance(events, dict) else None
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")), cursor


class EventStreams:
    """``/graphql`` for event-stream requests; any other request goes to ``fallback``."""

    def __init__(self, schema: Schema, fallback: ASGIApp, *, allowed_origins: Collection[str] = (),
                 keepalive: float = 15.0) -> None:
        self.schema = schema
        self.fallback = fallback
        self.allowed_origins = tuple(allowed_origins)
        self.keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_event_stream(scope) or scope["method"] not in ("GET", "POST"):
            await self.fallback(scope, receive, send)
            return
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        headers = request.headers
        if not origin_allowed(headers.get("origin"), headers.get("host"), self.allowed_origins):
            return _error(403, "FORBIDDEN", "this origin may not open event streams")
        resources: Resources | None = request.app.state.resources
        if resources is None or resources.authenticator is None:
            return _error(503, "SERVICE_UNAVAILABLE", "the gateway is starting")
        try:
            viewer = await resources.authenticator.authenticate(request.headers)
        except (InvalidToken, KeysUnavailable):
            viewer = None
        if viewer is None or not viewer.authenticated:
            return _error(401, "UNAUTHENTICATED", "log in first: Authorization: Bearer <token>",
                          **{"WWW-Authenticate": 'Bearer realm="minsheng"'})
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        refused = self._check(params)
        if refused is not None:
            return refused
        context = build_context(resources, viewer, request)
        context.resume_after = request.headers.get("last-event-id") or None
        result = await self.schema.subscribe(
            params["query"], variable_values=params.get("variables"), context_value=context,
            operation_name=params.get("operationName"))
        if isinstance(result, ExecutionResult):  # the request itself failed (syntax, validation …)
            data, _ = _encode(result)
            return Response(data, status_code=400, media_type="application/json")
        return StreamingResponse(self._stream(result), media_type=EVENT_STREAM,
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _check(self, params: dict[str, Any]) -> Response | None:
        """A 400 for a document that cannot run as a subscription (before any stream is opened)."""
        try:
            document = parse(params["query"])
        except GraphQLError as exc:
            return _error(400, "GRAPHQL_PARSE_FAILED", exc.message)
        errors = validate(self.schema._schema, document)
        if errors:
            return _error(400, "GRAPHQL_VALIDATION_FAILED", errors[0].message)
        operation = get_operation_ast(document, params.get("operationName"))
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return _error(400, "BAD_REQUEST", "event streams carry subscriptions; send queries and mutations "
                                              "to /graphql without Accept: text/event-stream")
        return None

    async def _params(self, request: Request) -> dict[str, Any] | Response:
        try:
            if request.method == "POST":
                params = await request.json()
            else:
                params = dict(request.query_params)
                if params.get("variables"):
                    params["variables"] = json.loads(params["variables"])
        except ValueError:
            return _error(400, "BAD_REQUEST", "the request is not valid JSON")
        if not isinstance(params, dict) or not isinstance(params.get("query"), str):
            return _error(400, "BAD_REQUEST", "send a GraphQL request with a `query`")
        if params.get("variables") is not None and not isinstance(params["variables"], dict):
            return _error(400, "BAD_REQUEST", "`variables` must be an object")
        return params

    async def _stream(self, results: AsyncGenerator[ExecutionResult, None]) -> AsyncIterator[str]:
        pending: asyncio.Future[ExecutionResult] | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(results.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=self.keepalive)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                try:
                    result = pending.result()
                except StopAsyncIteration:
                    break
                finally:
                    pending = None
                data, cursor = _encode(result)
                yield f"event: next\n{f'id: {cursor}' + chr(10) if cursor else ''}data: {data}\n\n"
            yield "event: complete\ndata:\n\n"
        finally:  # the client went away (or the stream ended): release the subscription
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await pending
            await results.aclose()

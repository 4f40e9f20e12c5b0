"""``/graphql`` over HTTP, as the GraphQL-over-HTTP spec has it, on strawberry's ASGI view.

Strawberry already does POST and GET, JSON bodies and GraphiQL. This fills the gaps:

* ``application/graphql-response+json`` when the client accepts it (``application/json`` otherwise);
  with it, a request error (syntax, validation, variables: no ``data``) answers 400;
* request errors carry no ``data`` entry;
* a mutation over GET answers 405 with ``Allow: POST``; a body that is not JSON answers 415;
* transport errors (malformed JSON, no query …) answer as GraphQL errors in JSON, never plain
  text or a trace;
* login: ``Authorization: Bearer <token>`` becomes the context's viewer. No token, or one that does
  not validate, answers HTTP 401 with ``extensions.code`` ``UNAUTHENTICATED`` and a
  ``WWW-Authenticate`` header (RFC 6750) before anything runs: anonymous callers get no graph at all
  (``/healthz``, ``/readyz``, ``/metrics`` and the GraphiQL page stay open). A WebSocket gets the
  anonymous viewer unless its upgrade request carries a valid token; subscriptions authenticate on
  ``connection_init`` with ``Resources.authenticator.authenticate_connection``.

And it holds the line against abuse (:class:`HttpPolicy`):

* a request body larger than ``max_body_bytes`` answers 413 before it is parsed;
* CSRF prevention as Apollo Server does it: a request that a browser could send cross-site without
  a preflight (no ``Content-Type``, or one of the three CORS-"simple" ones) is refused with 400
  unless it carries a non-empty ``x-apollo-operation-name``, ``apollo-require-preflight`` or
  ``graphql-preflight`` header (GraphiQL's own page is exempt; a POST is refused with 415 anyway
  unless it is JSON, which no browser sends cross-site without a preflight);
* an operation running longer than ``execution_timeout`` seconds answers 504 ``GATEWAY_TIMEOUT``;
* an operation refused by the rate limiter (``RATE_LIMITED``) answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from auth.errors import InvalidToken, KeysUnavailable
from auth.viewer import Viewer
from resolvers.context import GraphContext, Resources, build_context

__all__ = ["GRAPHQL_RESPONSE", "JSON", "PREFLIGHT_HEADERS", "GraphQLEndpoint", "HttpPolicy", "negotiate"]

log = logging.getLogger(__name__)

JSON = "application/json"
LOGIN_FIRST = "请先登录：POST /auth/token 取得令牌，再以 Authorization: Bearer <token> 访问"
GRAPHQL_RESPONSE = "application/graphql-response+json"
_CODES = {401: "UNAUTHENTICATED", 503: "SERVICE_UNAVAILABLE",
          400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE",
          413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 500: "INTERNAL_SERVER_ERROR",
          504: "GATEWAY_TIMEOUT"}
PREFLIGHT_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "graphql-preflight")
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
CSRF_MESSAGE = ("This request has been blocked as a potential Cross-Site Request Forgery (CSRF). Send it "
                "with a Content-Type other than application/x-www-form-urlencoded, multipart/form-data or "
                "text/plain, or with a non-empty header " + ", ".join(PREFLIGHT_HEADERS) + ".")


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """The endpoint's limits; the gateway fills them from its settings."""

    max_body_bytes: int = 1_000_000
    execution_timeout: float = 30.0
    csrf_prevention: bool = True


class _MethodNotAllowed(HTTPException):
    def __init__(self, reason: str, allow: str) -> None:
        super().__init__(405, reason)
        self.allow = allow


class _Unauthenticated(HTTPException):
    """HTTP 401 with the RFC 6750 challenge; the message never says why a token was refused."""

    def __init__(self, error: InvalidToken | None) -> None:
        super().__init__(401, InvalidToken.public_message if error else LOGIN_FIRST)
        self.challenge = error.www_authenticate() if error else 'Bearer realm="minsheng"'


def negotiate(accept: str | None) -> str:
    """The media type to answer with: graphql-response+json when asked for and not outranked by json."""
    if not accept:
        return JSON
    weights: dict[str, float] = {}
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media.strip().lower()] = max(quality, weights.get(media.strip().lower(), 0.0))
    preferred = weights.get(GRAPHQL_RESPONSE, 0.0)
    return GRAPHQL_RESPONSE if preferred > 0 and preferred >= weights.get(JSON, 0.0) else JSON


def _is_request_error(data: GraphQLHTTPResponse) -> bool:
    errors = data.get("errors") or []
    return data.get("data") is None and bool(errors) and not any(
        isinstance(error, dict) and error.get("path") for error in errors)


def _rate_limited(data: GraphQLHTTPResponse | list[GraphQLHTTPResponse]) -> int | None:
    """``retryAfter`` when every operation of the answer was refused by the rate limiter."""
    answers = data if isinstance(data, list) else [data]
    waits: list[int] = []
    for answer in answers:
        extensions = [error.get("extensions") or {} for error in answer.get("errors") or []
                      if isinstance(error, dict)]
        if (answer.get("data") is not None or not extensions
                or any(ext.get("code") != "RATE_LIMITED" for ext in extensions)):
            return None
        waits += [int(ext.get("retryAfter", 1)) for ext in extensions]
    return max(waits, default=None)


class GraphQLEndpoint(GraphQL[GraphContext, None]):
    """The ``/graphql`` endpoint. The context gets the app's shared resources and the viewer."""

    def __init__(self, schema: BaseSchema, *, production: bool, policy: HttpPolicy | None = None) -> None:
        super().__init__(schema, graphql_ide=None if production else "graphiql", allow_queries_via_get=True,
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        self.policy = policy or HttpPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        media_type = negotiate(request.headers.get("accept"))
        try:
            self._check_csrf(request)
            request = await self._buffered(request)
            response = await self.run(request)
        except HTTPException as exc:
            response = error_response(exc.status_code, exc.reason, media_type,
                                      allow=getattr(exc, "allow", None),
                                      challenge=getattr(exc, "challenge", None))
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.url.path)
            response = error_response(500, "Internal server error", media_type)
        await response(scope, receive, send)

    def _check_csrf(self, request: Request) -> None:
        # POST is taken only as JSON (anything else answers 415 unexecuted), and a browser cannot send
        # JSON cross-site without a preflight: what is left to guard is GET.
        if not self.policy.csrf_prevention or request.method == "POST" or self._is_ide_page(request):
            return
        content_type = request.headers.get("content-type")
        if content_type is not None and parse_content_type(content_type)[0] not in SIMPLE_CONTENT_TYPES:
            return
        if any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
            return
        raise HTTPException(400, CSRF_MESSAGE)

    @staticmethod
    def _is_ide_page(request: Request) -> bool:
        # no operation to run: GraphiQL's page, or 404 where it is off
        return (request.method == "GET" and "query" not in request.query_params
                and "text/html" in request.headers.get("accept", ""))

    async def _buffered(self, request: Request) -> Request:
        """The request with its body read under the size cap (413 past it), replayed to strawberry."""
        if request.method != "POST":
            return request
        limit = self.policy.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, "the request body is too large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, "the request body is too large")
            chunks.append(chunk)
        body = b"".join(chunks)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        return Request(request.scope, receive=replay)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphContext:
        resources: Resources | None = request.app.state.resources
        if resources is None:
            raise HTTPException(503, "the gateway is starting")
        return build_context(resources, viewer=await self._viewer(request, resources), request=request)

    async def _viewer(self, request: Request | WebSocket, resources: Resources) -> Viewer:
        """The caller: from the bearer token; a request without a valid one is refused with 401."""
        authenticator = resources.authenticator
        if authenticator is None:
            raise HTTPException(503, "login is not configured")
        if isinstance(request, WebSocket):
            try:
                return await authenticator.authenticate(request.headers)
            except (InvalidToken, KeysUnavailable):
                return Viewer.anonymous()  # connection_init decides; the anonymous viewer sees nothing
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return Viewer.anonymous()  # the GraphiQL page itself is static; its queries carry a token
        try:
            viewer = await authenticator.authenticate(request.headers)
        except InvalidToken as exc:
            log.info("refused a token on %s: %s", request.url.path, exc.reason.value)
            raise _Unauthenticated(exc) from None
        except KeysUnavailable:
            raise HTTPException(503, KeysUnavailable.public_message) from None
        if not viewer.authenticated:
            raise _Unauthenticated(None)
        return viewer

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type not in (JSON, GRAPHQL_RESPONSE) and not content_type.endswith("+json"):
                raise HTTPException(415, "send the GraphQL request as application/json")
        try:
            return await super().parse_http_body(request)
        except (AttributeError, TypeError) as exc:  # a JSON body that is not an object
            raise HTTPException(400, "the request body must be a JSON object") from exc
        except RecursionError as exc:  # JSON nested past Python's recursion limit (the body cap allows it)
            raise HTTPException(400, "the request nests too deeply") from exc

    async def execute_single(self, request: Request, request_adapter: AsyncHTTPRequestAdapter,
                             sub_response: Response, context: GraphContext, root_value: None,
                             request_data: GraphQLRequestData) -> ExecutionResult:
        try:
            execution = super().execute_single(request, request_adapter, sub_response, context, root_value,
                                               request_data)
            return await asyncio.wait_for(execution, self.policy.execution_timeout)
        except TimeoutError as exc:
            raise HTTPException(504, "the operation took longer than the gateway allows") from exc
        except HTTPException as exc:
            if request_adapter.method == "GET" and isinstance(exc.__cause__, InvalidOperationTypeError):
                raise _MethodNotAllowed("only queries may be sent with GET; use POST", allow="POST") from exc
            raise

    def encode_json(self, data: object) -> str:
        # Chinese text goes out as UTF-8, not as escapes: about half the bytes
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def create_response(self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
                        sub_response: Response) -> Response:
        media_type = sub_response.media_type or JSON
        status = sub_response.status_code or 200
        retry_after = _rate_limited(response_data)
        if isinstance(response_data, dict) and _is_request_error(response_data):
            response_data = {key: value for key, value in response_data.items() if key != "data"}  # type: ignore[assignment]
            if media_type == GRAPHQL_RESPONSE:
                status = 400
        if retry_after is not None:
            status = 429
            sub_response.headers["Retry-After"] = str(retry_after)
        response = Response(self.encode_json(response_data), status_code=status, media_type=media_type)
        response.headers.raw.extend(
            (name, value) for name, value in sub_response.headers.raw if name.lower() != b"content-type")
        return response


def error_response(status: int, message: str, media_type: str = JSON, *,
                   allow: str | None = None, challenge: str | None = None) -> Response:
    """A transport-level failure as a GraphQL error document."""
    body = {"errors": [{"message": message, "extensions": {"code": _CODES.get(status, "BAD_REQUEST")}}]}
    if status == 405 and not allow:
        allow = "GET, POST"
    headers = {"Allow": allow} if allow else {}
    if challenge:
        headers["WWW-Authenticate"] = challenge
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type=media_type,
                    headers=headers)

"""The 12345 government hotline's work-order API (sandbox stand-in). Contract: ``openapi.yaml``.

* ``POST /oauth/token`` — OAuth2 client credentials (form fields or HTTP Basic) → a short-lived bearer token;
* ``GET /api/v1/workorders`` — changes by ``updatedAfter`` with keyset cursors, ordered by (gxsj, gdbh);
* ``POST /api/v1/workorders/batch`` — up to 50 work orders by gdbh, with their action logs;
* ``POST /api/v1/workorders/{gdbh}/actions`` — 签收/回复/办结/退单, once per ``czid``;
* signed webhooks (``workorder.updated``) to ``webhook_url`` when given;
* ``POST /__sandbox/revoke-tokens`` — forget every issued token (tests of refresh-on-401).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.hotline12345.orders import ACTIONS, ActionError, WorkOrderBook, parse_beijing, render
from sandbox.hotline12345.security import RateBudget, TokenIssuer, WebhookPusher
from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

__all__ = ["BATCH_LIMIT", "CLIENT_ID", "CLIENT_SECRET", "MAX_PAGE", "WEBHOOK_SECRET", "create_app"]

CLIENT_ID = "minsheng-gateway"
CLIENT_SECRET = "sandbox-12345-secret"
WEBHOOK_SECRET = "sandbox-12345-webhook"
BATCH_LIMIT = 50
MAX_PAGE = 100
DEFAULT_PAGE = 20

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, code: str, msg: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers or None)


class HotlineApi:
    """The route handlers, over one :class:`WorkOrderBook`."""

    def __init__(self, book: WorkOrderBook, tokens: TokenIssuer, budget: RateBudget,
                 pusher: WebhookPusher | None) -> None:
        self.book = book
        self.tokens = tokens
        self.budget = budget
        self.pusher = pusher

    def guarded(self, handler: Handler) -> Handler:
        """Bearer token and rate budget in front of ``handler``."""

        async def guard(request: Request) -> Response:
            if self.pusher is not None:
                self.pusher.start()  # mounted without a lifespan: start pushing on first use
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _error(401, "TOKEN_INVALID", "缺少访问令牌", **{"WWW-Authenticate": "Bearer"})
            problem = self.tokens.check(token)
            if problem is not None:
                msg = "访问令牌已过期" if problem == "TOKEN_EXPIRED" else "访问令牌无效"
                return _error(401, problem, msg, **{"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if not self.budget.spend(token):
                return _error(429, "RATE_LIMITED", "请求过于频繁，请稍后再试", **{"Retry-After": "1"})
            return await handler(request)

        return guard

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = _basic_credentials(request.headers.get("Authorization", ""))
        if basic is not None:
            client_id, client_secret = basic
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not self.tokens.client_ok(client_id, client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401,
                                headers={"WWW-Authenticate": "Basic"})
        return JSONResponse(self.tokens.issue(), headers={"Cache-Control": "no-store"})

    async def list_orders(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", DEFAULT_PAGE))
            after = parse_beijing(params["updatedAfter"]) if params.get("updatedAfter") else None
            key = _decode_cursor(params["cursor"]) if params.get("cursor") else None
        except (ValueError, KeyError):
            return _error(400, "INVALID_PARAM", "参数格式错误（updatedAfter: yyyy-MM-dd HH:mm:ss）")
        if not 1 <= limit <= MAX_PAGE:
            return _error(400, "INVALID_PARAM", f"limit取值范围1-{MAX_PAGE}")
        data, next_key = self.book.page(after, key, limit)
        return JSONResponse({"code": "0", "data": data,
                             "nextCursor": None if next_key is None else _encode_cursor(next_key)})

    async def batch(self, request: Request) -> Response:
        ids = await _json_field(request, "ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return _error(400, "INVALID_PARAM", "ids必须是工单编号数组")
        if len(ids) > BATCH_LIMIT:
            return _error(400, "TOO_MANY_IDS", f"单次最多查询{BATCH_LIMIT}个工单")
        found = [(gdbh, self.book.find(gdbh)) for gdbh in dict.fromkeys(ids)]
        return JSONResponse({"code": "0", "data": [render(*pair, detail=True) for _, pair in found if pair],
                             "notFound": [gdbh for gdbh, pair in found if pair is None]})

    async def act(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "INVALID_PARAM", "请求体必须是JSON对象")
        kind, czid = body.get("type"), body.get("czid")
        if kind not in ACTIONS:
            return _error(400, "INVALID_TYPE", "type取值：qianshou/huifu/banjie/tuidan")
        if not isinstance(czid, str) or not czid:
            return _error(400, "INVALID_PARAM", "缺少操作编号czid")
        fields = {name: str(body.get(name) or "") for name in ("nr", "czr", "bm")}
        try:
            duplicate, order = self.book.act(request.path_params["gdbh"], kind, czid, fields)
        except ActionError as exc:
            return _error(exc.status, exc.code, exc.msg)
        return JSONResponse({"code": "0", "duplicate": duplicate, "data": order})

    async def revoke(self, request: Request) -> Response:
        self.tokens.revoke_all()
        return JSONResponse({"revoked": True})

    async def push_stats(self, request: Request) -> Response:
        pusher = self.pusher
        return JSONResponse({"sent": pusher.sent if pusher else 0, "failed": pusher.failed if pusher else 0,
                             "tokens_issued": self.tokens.issued})


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _encode_cursor(key: tuple[datetime, str]) -> str:
    raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        moment, gdbh = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(moment), str(gdbh)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ValueError("bad cursor") from exc


async def _json_field(request: Request, name: str) -> Any:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


class _Lifespan:
    """Starts the webhook pusher with the app and stops it with the app."""

    def __init__(self, app: ASGIApp, pusher: WebhookPusher) -> None:
        self.app = app
        self.pusher = pusher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def hooked() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pusher.start()
            elif message["type"] == "lifespan.shutdown":
                await self.pusher.stop()
            return message

        await self.app(scope, hooked, send)


def create_app(tickets: list[Ticket], *, seed: int = 7, client_id: str = CLIENT_ID,
               client_secret: str = CLIENT_SECRET, webhook_secret: str = WEBHOOK_SECRET,
               webhook_url: str | None = None, token_ttl: float = 300.0, rate_limit: int = 50,
               push_interval: float = 0.2) -> ASGIApp:
    """The hotline's ASGI app over ``tickets`` (the world's ``hotline12345`` tickets).

    Args:
        token_ttl: seconds a bearer token lives (tests use ~1 s to see refreshes).
        rate_limit: requests per second per token before 429 (0: unlimited).
        webhook_url: where to push ``workorder.updated`` events; ``None``: no push.
    """
    sandbox = ChannelSandbox("hotline12345", tickets, seed=seed)
    book = WorkOrderBook(sandbox)
    pusher = None if webhook_url is None else WebhookPusher(book, webhook_url, webhook_secret,
                                                            interval=push_interval)
    api = HotlineApi(book, TokenIssuer(client_id, client_secret, token_ttl), RateBudget(rate_limit), pusher)
    routes: list[BaseRoute] = [
        Route("/oauth/token", api.token, methods=["POST"]),
        Route("/api/v1/workorders", api.guarded(api.list_orders), methods=["GET"]),
        Route("/api/v1/workorders/batch", api.guarded(api.batch), methods=["POST"]),
        Route("/api/v1/workorders/{gdbh}/actions", api.guarded(api.act), methods=["POST"]),
        Route("/__sandbox/revoke-tokens", api.revoke, methods=["POST"]),
        Route("/__sandbox/push", api.push_stats, methods=["GET"]),
    ]
    wrap = None if pusher is None else (lambda app: _Lifespan(app, pusher))
    return sandbox.build(routes, middleware_wraps=wrap)

"""The court's pre-litigation mediation platform (诉前调解平台, sandbox stand-in). Contract: ``openapi.yaml``.

REST/JSON with camelCase keys, every request HMAC-signed (see :mod:`sandbox.court.security`), UTC
ISO-8601 times with ``Z``, errors as HTTP status plus ``{"errcode", "errmsg"}``:

* ``GET /api/v2/mediations?modifiedSince&offset&limit&street`` — cases with updatedAt ≥ modifiedSince,
  by (updatedAt, caseNo): ``{"total", "items"}``;
* ``POST /api/v2/mediations:batchGet`` — ``{"caseNos": [...]}`` (≤ 20) → cases with their feedback log;
* ``GET /api/v2/mediations/{caseNo}`` — one case (the case number percent-encoded in the path);
* ``POST /api/v2/mediations/feedback`` — ACCEPT / PROGRESS / CLOSE / RETURN, once per ``requestId``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.court.cases import FEEDBACK_TYPES, CaseBook, FeedbackError, parse_iso
from sandbox.court.security import SignatureGate
from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

__all__ = ["APP_KEY", "APP_SECRET", "BATCH_LIMIT", "MAX_LIMIT", "create_app"]

APP_KEY = "minsheng-gateway"
APP_SECRET = "sandbox-court-secret"
BATCH_LIMIT = 20
MAX_LIMIT = 50
DEFAULT_LIMIT = 20

Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg}, status_code=status)


def _raw_path(request: Request) -> str:
    """The path as sent on the wire (uvicorn's ``raw_path``; some servers include the query there)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1").partition("?")[0]
    return str(request.scope["path"])  # Starlette keeps the full path (mount prefix included) here


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


class CourtApi:
    """The route handlers over one :class:`CaseBook`, behind one :class:`SignatureGate`."""

    def __init__(self, book: CaseBook, gate: SignatureGate) -> None:
        self.book = book
        self.gate = gate

    def signed(self, handler: Handler) -> Handler:
        async def check(request: Request) -> Response:
            refused = self.gate.check(request.method, _raw_path(request), request.query_params.multi_items(),
                                      request.headers, await request.body())
            if refused is not None:
                return error(401, *refused)
            return await handler(request)

        return check

    async def mediations(self, request: Request) -> Response:
        params = request.query_params
        try:
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", DEFAULT_LIMIT))
            since = parse_iso(params["modifiedSince"]) if params.get("modifiedSince") else None
        except ValueError:
            return error(400, 40001, "参数错误：offset/limit须为整数，modifiedSince须为带时区的ISO-8601时间")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            return error(400, 40001, f"参数错误：offset≥0，limit取值1-{MAX_LIMIT}")
        total, items = self.book.page(since, offset, limit, params.get("street") or None)
        return JSONResponse({"total": total, "items": items})

    async def batch_get(self, request: Request) -> Response:
        body = await _json_object(request)
        case_nos = None if body is None else body.get("caseNos")
        if not isinstance(case_nos, list) or not case_nos or not all(isinstance(n, str) for n in case_nos):
            return error(400, 40001, "参数错误：caseNos须为非空的案号数组")
        if len(case_nos) > BATCH_LIMIT:
            return error(400, 40002, f"单次最多查询{BATCH_LIMIT}件")
        items, missing = self.book.detail(case_nos)
        return JSONResponse({"items": items, "notFound": missing})

    async def one(self, request: Request) -> Response:
        items, _ = self.book.detail([request.path_params["caseNo"]])
        return JSONResponse(items[0]) if items else error(404, 40401, "案件不存在")

    async def feedback(self, request: Request) -> Response:
        body = await _json_object(request) or {}
        fields = {key: value for key, value in body.items() if isinstance(value, str)}
        case_no, request_id, kind = fields.get("caseNo"), fields.get("requestId"), fields.get("type")
        if not case_no or not request_id or kind not in FEEDBACK_TYPES or not fields.get("operator"):
            return error(400, 40001, "参数错误：caseNo、requestId、type（ACCEPT/PROGRESS/CLOSE/RETURN）、"
                                     "operator必填")
        try:
            duplicate, state = self.book.feedback(case_no, request_id, kind, fields)
        except FeedbackError as exc:
            return error(exc.status, exc.errcode, exc.errmsg)
        return JSONResponse({"errcode": 0, "errmsg": "重复请求，已忽略" if duplicate else "ok",
                             "caseNo": case_no, "requestId": request_id, "duplicate": duplicate,
                             "state": state})


def create_app(tickets: list[Ticket], *, seed: int = 7, app_key: str = APP_KEY,
               app_secret: str = APP_SECRET) -> ASGIApp:
    """The mediation platform's ASGI app over ``tickets`` (the world's ``court`` tickets)."""
    sandbox = ChannelSandbox("court", tickets, seed=seed)
    api = CourtApi(CaseBook(sandbox), SignatureGate({app_key: app_secret}))
    routes: list[BaseRoute] = [
        Route("/api/v2/mediations", api.signed(api.mediations), methods=["GET"]),
        Route("/api/v2/mediations:batchGet", api.signed(api.batch_get), methods=["POST"]),
        Route("/api/v2/mediations/feedback", api.signed(api.feedback), methods=["POST"]),
        Route("/api/v2/mediations/{caseNo}", api.signed(api.one), methods=["GET"]),
    ]
    return sandbox.build(routes)

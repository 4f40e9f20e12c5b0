"""局长信箱 (sandbox stand-in): residents write to the head of a district bureau, who promises to sign
within 10 minutes, contact the writer within 30 minutes and give first feedback within 4 days.
Contract: ``openapi.yaml``.

OAuth2 client credentials (tokens live 10 minutes); page/size paging by ``pageNo``/``pageSize`` over
letters modified since ``modifiedSince`` (epoch milliseconds); numeric status codes; times in epoch
milliseconds; an envelope ``{"code": 0, "msg", "data"}``:

* ``POST /oauth2/token`` — ``grant_type=client_credentials`` form;
* ``GET /openapi/letters?modifiedSince&pageNo&pageSize`` — by (lastModified, letterNo);
* ``POST /openapi/letters/query`` — ``{"letterNos": […]}``, at most 20;
* ``POST /openapi/letters/{letterNo}/feedback`` — ``{"type": sign|contact|reply|finish|return, "content",
  "handler"}``, idempotent by ``Idempotency-Key``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

__all__ = ["BATCH_LIMIT", "CLIENT_ID", "CLIENT_SECRET", "create_app"]

CLIENT_ID = "minsheng-gateway"
CLIENT_SECRET = "sandbox-juzhang-secret"
BATCH_LIMIT = 20
MAX_PAGE_SIZE = 100
TOKEN_LIFETIME = 600
# status codes: 0 待签收, 1 已签收, 2 已联系, 3 办理中, 4 已反馈, 5 已办结, 8 已退回, 9 不予受理
CODES = {"new": 0, "accepted": 1, "contacted": 2, "processing": 3, "replied": 4, "done": 5, "closed": 5,
         "returned": 8, "rejected": 9}
FEEDBACK = {"sign": "accepted", "contact": "contacted", "reply": "replied", "finish": "done",
            "return": "returned"}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def render(ticket: Ticket) -> dict[str, Any]:
    return {
        "letterNo": ticket.source_id, "subject": ticket.title, "content": ticket.content,
        "bureau": ticket.extra.get("bureau", "区政府办公室"), "category": ticket.category_path[-1],
        "writer": {"name": ticket.resident.name, "tel": ticket.resident.phone},
        "addr": {"jd": ticket.street, "sq": ticket.community, "detail": ticket.address},
        "statusCode": CODES[ticket.stage], "submitTime": _ms(ticket.received_at),
        "lastModified": _ms(ticket.updated_at),
    }


def envelope(data: Any = None, code: int = 0, msg: str = "ok", status: int = 200) -> Response:
    return JSONResponse({"code": code, "msg": msg, "data": data}, status_code=status)


class JuzhangApi:
    def __init__(self, sandbox: ChannelSandbox, client_id: str, client_secret: str) -> None:
        self.sandbox = sandbox
        self.client = (client_id, client_secret)
        self.tokens: dict[str, float] = {}
        self.done: dict[str, dict[str, Any]] = {}

    async def token(self, request: Request) -> Response:
        form = await request.form()
        given = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        if form.get("grant_type") != "client_credentials" or not all(
                hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(given, self.client, strict=True)):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME})

    def authorised(self, request: Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.tokens.get(token, 0) > time.monotonic()

    async def letters(self, request: Request) -> Response:
        if not self.authorised(request):
            return envelope(code=401, msg="token无效或已过期", status=401)
        params = request.query_params
        try:
            since = int(params.get("modifiedSince", 0))
            page, size = int(params.get("pageNo", 1)), int(params.get("pageSize", 20))
        except ValueError:
            return envelope(code=400, msg="参数错误", status=400)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return envelope(code=400, msg=f"pageNo≥1，pageSize取值1-{MAX_PAGE_SIZE}", status=400)
        shown = [t for t in self.sandbox.visible() if _ms(t.updated_at) >= since]
        rows = shown[(page - 1) * size: page * size]
        return envelope({"total": len(shown), "pageNo": page, "rows": [render(t) for t in rows]})

    async def query(self, request: Request) -> Response:
        if not self.authorised(request):
            return envelope(code=401, msg="token无效或已过期", status=401)
        try:
            numbers = [str(n) for n in (await request.json())["letterNos"]]
        except (ValueError, KeyError, TypeError):
            return envelope(code=400, msg="letterNos必填", status=400)
        if len(numbers) > BATCH_LIMIT:
            return envelope(code=400, msg=f"单次最多查询{BATCH_LIMIT}件", status=400)
        found = [self.sandbox.get(n) for n in numbers]
        return envelope([render(t) for t in found if t is not None])

    async def feedback(self, request: Request) -> Response:
        if not self.authorised(request):
            return envelope(code=401, msg="token无效或已过期", status=401)
        ticket = self.sandbox.get(request.path_params["letter_no"])
        if ticket is None:
            return envelope(code=404, msg="信件不存在", status=404)
        key = request.headers.get("Idempotency-Key", "")
        if key in self.done:
            return envelope({**self.done[key], "repeated": True})
        try:
            stage = FEEDBACK[(await request.json())["type"]]
        except (ValueError, KeyError, TypeError):
            return envelope(code=400, msg=f"type取值{'/'.join(FEEDBACK)}", status=400)
        if ticket.stage in ("done", "closed", "rejected"):
            return envelope(code=409, msg="信件已办结", status=409)
        ticket.stage = stage
        ticket.updated_at = max(datetime.now(UTC), ticket.updated_at + timedelta(milliseconds=1))
        answer = {"letterNo": ticket.source_id, "statusCode": CODES[stage], "repeated": False}
        if key:
            self.done[key] = answer
        return envelope(answer)


def create_app(tickets: list[Ticket], *, seed: int = 7, client_id: str = CLIENT_ID,
               client_secret: str = CLIENT_SECRET) -> ASGIApp:
    """局长信箱's ASGI app over ``tickets`` (the world's ``juzhang`` tickets)."""
    sandbox = ChannelSandbox("juzhang", tickets, seed=seed)
    api = JuzhangApi(sandbox, client_id, client_secret)
    routes: list[BaseRoute] = [
        Route("/oauth2/token", api.token, methods=["POST"]),
        Route("/openapi/letters", api.letters, methods=["GET"]),
        Route("/openapi/letters/query", api.query, methods=["POST"]),
        Route("/openapi/letters/{letter_no}/feedback", api.feedback, methods=["POST"]),
    ]
    return sandbox.build(routes)

"""The district-head hotline 区长热线 (sandbox stand-in): an older REST system. Contract: ``openapi.yaml``.

Like the real one it answers HTTP 200 with a ``返回码`` even for errors ("0000" is success), takes
its API key in the query string, pages by ``page``/``rows``, speaks GBK and counts time in epoch
milliseconds:

* ``GET /api/letters.do?apikey&since&page&rows`` — letters with 更新时间 ≥ since, by (更新时间, 编号);
* ``GET /api/letter_detail.do?apikey&ids=a,b,c`` — up to 20 letters with their 办理记录;
* ``POST /api/reply.do?apikey`` — a GBK form: 编号, 操作 (签收/回复/办结/退回), 内容, 操作人, 操作流水号.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.mayor.letters import OPERATIONS, LetterBook, LetterError, encode_gbk
from sandbox.world import Ticket

__all__ = ["API_KEY", "BATCH_LIMIT", "MAX_ROWS", "create_app"]

API_KEY = "sandbox-mayor-key"
BATCH_LIMIT = 20
MAX_ROWS = 100
CONTENT_TYPE = "application/json;charset=GBK"

Handler = Callable[[Request], Awaitable[Response]]


def answer(code: str = "0000", message: str = "成功", **fields: Any) -> Response:
    """The system's envelope, GBK-encoded, always HTTP 200."""
    payload = {"返回码": code, "返回信息": message, **fields}
    return Response(encode_gbk(json.dumps(payload, ensure_ascii=False)), media_type=CONTENT_TYPE)


class MayorApi:
    def __init__(self, book: LetterBook, api_key: str) -> None:
        self.book = book
        self.api_key = api_key

    def keyed(self, handler: Handler) -> Handler:
        async def check(request: Request) -> Response:
            given = request.query_params.get("apikey", "")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return answer("1001", "apikey无效")
            return await handler(request)

        return check

    async def letters(self, request: Request) -> Response:
        params = request.query_params
        try:
            since, page, rows = (int(params.get(name, default)) for name, default in
                                 (("since", 0), ("page", 1), ("rows", 20)))
        except ValueError:
            return answer("1002", "参数错误：since/page/rows必须是整数")
        if page < 1 or not 1 <= rows <= MAX_ROWS:
            return answer("1002", f"参数错误：page≥1，rows取值1-{MAX_ROWS}")
        total, records = self.book.page(since, page, rows)
        return answer(总数=total, 记录=records)

    async def detail(self, request: Request) -> Response:
        ids = [part.strip() for part in request.query_params.get("ids", "").split(",") if part.strip()]
        if not ids:
            return answer("1002", "参数错误：缺少ids")
        if len(ids) > BATCH_LIMIT:
            return answer("1003", f"单次最多查询{BATCH_LIMIT}件")
        return answer(记录=self.book.detail(ids))

    async def reply(self, request: Request) -> Response:
        try:
            form = parse_qs((await request.body()).decode("ascii"), encoding="gbk", keep_blank_values=True)
        except UnicodeDecodeError:
            return answer("1002", "参数错误：表单须按GBK进行URL编码")
        fields = {name: values[0] for name, values in form.items()}
        operation, serial = fields.get("操作", ""), fields.get("操作流水号", "")
        letter_id = fields.get("编号", "")
        if operation not in OPERATIONS or not serial or not letter_id:
            return answer("1002", "参数错误：编号、操作（签收/回复/办结/退回）、操作流水号必填")
        try:
            duplicate, status = self.book.operate(letter_id, operation, serial, fields.get("内容", ""),
                                                  fields.get("操作人", ""))
        except LetterError as exc:
            return answer(exc.code, exc.message)
        return answer(message="重复提交，已忽略" if duplicate else "成功", 编号=letter_id, 办理状态=status,
                      是否重复=duplicate)


def create_app(tickets: list[Ticket], *, seed: int = 7, api_key: str = API_KEY) -> ASGIApp:
    """The district-head hotline's ASGI app over ``tickets`` (the world's ``mayor`` tickets)."""
    sandbox = ChannelSandbox("mayor", tickets, seed=seed)
    api = MayorApi(LetterBook(sandbox), api_key)
    routes: list[BaseRoute] = [
        Route("/api/letters.do", api.keyed(api.letters), methods=["GET"]),
        Route("/api/letter_detail.do", api.keyed(api.detail), methods=["GET"]),
        Route("/api/reply.do", api.keyed(api.reply), methods=["POST"]),
    ]
    return sandbox.build(routes)

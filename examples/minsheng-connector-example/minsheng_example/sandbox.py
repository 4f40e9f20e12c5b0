"""A stand-in for the suggestions system, so the connector can be tested: ``GET /suggestions``
(``X-Api-Key``; ``since``, ``page``, ``size``), ``GET /suggestions/{id}``,
``POST /suggestions/{id}/replies`` (idempotent by ``requestId``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "example-key"
START = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
TOPICS = ["建议在田寮社区增设公交站点", "建议延长光明图书馆开放时间", "建议在玉塘街道增加充电桩",
          "建议改善公明市场周边停车", "建议在新湖街道增设社区食堂", "建议增加马田街道夜间巡逻"]


def _suggestions() -> list[dict[str, Any]]:
    return [{"id": f"JY{n:05d}", "title": TOPICS[n % len(TOPICS)],
             "text": f"{TOPICS[n % len(TOPICS)]}，方便居民。",
             "author": {"name": "居民" + "甲乙丙丁"[n % 4], "phone": f"1380000{n:04d}"},
             "street": "玉塘街道", "state": "open" if n % 3 else "answered",
             "created": (START + timedelta(hours=n)).isoformat(),
             "updated": (START + timedelta(hours=n, minutes=5)).isoformat()}
            for n in range(1, 24)]


def create_app() -> Starlette:
    """A fresh suggestions system (its own state)."""
    items = {s["id"]: s for s in _suggestions()}
    replies: set[str] = set()

    def refused(request: Request) -> JSONResponse | None:
        return None if request.headers.get("X-Api-Key") == API_KEY else JSONResponse({"error": "key"}, 401)

    async def listing(request: Request) -> JSONResponse:
        if (answer := refused(request)) is not None:
            return answer
        since, page, size = (request.query_params.get("since", ""), int(request.query_params.get("page", 1)),
                             int(request.query_params.get("size", 10)))
        rows = sorted((s for s in items.values() if s["updated"] >= since),
                      key=lambda s: (s["updated"], s["id"]))
        return JSONResponse({"data": rows[(page - 1) * size: page * size]})

    async def one(request: Request) -> JSONResponse:
        if (answer := refused(request)) is not None:
            return answer
        item = items.get(request.path_params["id"])
        return JSONResponse({"data": item}) if item else JSONResponse({"error": "not found"}, 404)

    async def reply(request: Request) -> JSONResponse:
        if (answer := refused(request)) is not None:
            return answer
        item = items.get(request.path_params["id"])
        if item is None:
            return JSONResponse({"error": "not found"}, 404)
        request_id = (await request.json())["requestId"]
        duplicate = request_id in replies
        replies.add(request_id)
        item["state"], item["updated"] = "answered", max(item["updated"], datetime.now(UTC).isoformat())
        return JSONResponse({"state": item["state"], "duplicate": duplicate})

    return Starlette(routes=[Route("/suggestions", listing), Route("/suggestions/{id}", one),
                             Route("/suggestions/{id}/replies", reply, methods=["POST"])])

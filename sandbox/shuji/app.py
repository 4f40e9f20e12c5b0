"""书记在线 (sandbox stand-in): residents scan a QR code the district, street or community party
secretary has posted and write in; the secretary's office handles it. Contract: ``openapi.yaml``.

A modern JSON API: ``X-Api-Key`` header; keyset paging with an opaque ``nextCursor``; nested objects
(``qrcode``, ``location``, ``reporter``); Chinese state words; ISO-8601 times with ``+08:00``:

* ``GET /api/v2/items?updatedSince&limit&cursor`` — items by (modified, id);
* ``GET /api/v2/items:batchGet?ids=a,b`` — up to 30 items;
* ``POST /api/v2/items/{id}/actions`` — ``{"action": 签收|回复|办结|退回, "content", "operator"}``,
  idempotent by the ``Idempotency-Key`` header.
"""

from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

__all__ = ["API_KEY", "BATCH_LIMIT", "create_app"]

API_KEY = "sandbox-shuji-key"
BATCH_LIMIT = 30
MAX_LIMIT = 200
BEIJING = ZoneInfo("Asia/Shanghai")
STATES = {"new": "待受理", "accepted": "已签收", "processing": "办理中", "done": "已办结", "closed": "已评价",
          "rejected": "不予受理", "returned": "已退回"}
ACTIONS = {"签收": "accepted", "回复": "processing", "办结": "done", "退回": "returned"}


def _time(value: datetime) -> str:
    return value.astimezone(BEIJING).isoformat(timespec="seconds")


def render(ticket: Ticket) -> dict[str, Any]:
    """One item as the system shows it."""
    return {
        "id": ticket.source_id, "subject": ticket.title,
        "body": {"text": ticket.content, "matter": ticket.category_path[-1]},
        "qrcode": {"level": ticket.extra.get("qr_level", "社区"),
                   "owner": f"{ticket.community or ticket.street or '光明区'}书记"},
        "major": bool(ticket.extra.get("major", False)),
        "location": {"street": ticket.street, "community": ticket.community, "address": ticket.address},
        "reporter": {"name": ticket.resident.name, "mobile": ticket.resident.phone},
        "state": STATES[ticket.stage], "created": _time(ticket.received_at),
        "modified": _time(ticket.updated_at),
    }


def _problem(status: int, title: str) -> Response:
    return JSONResponse({"type": "about:blank", "title": title, "status": status}, status_code=status,
                        media_type="application/problem+json")


class ShujiApi:
    def __init__(self, sandbox: ChannelSandbox, api_key: str) -> None:
        self.sandbox = sandbox
        self.api_key = api_key
        self.done: dict[str, dict[str, Any]] = {}  # Idempotency-Key → the first answer

    def authorised(self, request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("X-Api-Key", "").encode(), self.api_key.encode())

    async def items(self, request: Request) -> Response:
        if not self.authorised(request):
            return _problem(401, "invalid api key")
        params = request.query_params
        try:
            limit = int(params.get("limit", 50))
            since = datetime.fromisoformat(params["updatedSince"]) if params.get("updatedSince") else None
            after = json.loads(base64.urlsafe_b64decode(params["cursor"])) if params.get("cursor") else None
        except (ValueError, KeyError, TypeError):
            return _problem(400, "bad updatedSince, limit or cursor")
        if not 1 <= limit <= MAX_LIMIT:
            return _problem(400, f"limit must be 1–{MAX_LIMIT}")
        shown = [t for t in self.sandbox.visible() if since is None or t.updated_at >= since]
        if after is not None:
            shown = [t for t in shown if (_time(t.updated_at), t.source_id) > tuple(after)]
        page, token = shown[:limit], None
        if len(shown) > limit:
            last = [_time(page[-1].updated_at), page[-1].source_id]
            token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode()
        return JSONResponse({"items": [render(t) for t in page], "nextCursor": token})

    async def batch(self, request: Request) -> Response:
        if not self.authorised(request):
            return _problem(401, "invalid api key")
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids or len(ids) > BATCH_LIMIT:
            return _problem(400, f"ids: 1–{BATCH_LIMIT} ids, comma-separated")
        found = [self.sandbox.get(i) for i in ids]
        return JSONResponse({"items": [render(t) for t in found if t is not None]})

    async def act(self, request: Request) -> Response:
        if not self.authorised(request):
            return _problem(401, "invalid api key")
        key = request.headers.get("Idempotency-Key", "")
        ticket = self.sandbox.get(request.path_params["id"])
        if ticket is None:
            return _problem(404, "no such item")
        if key and key in self.done:
            return JSONResponse({**self.done[key], "replayed": True})
        try:
            body = await request.json()
            stage = ACTIONS[body["action"]]
        except (ValueError, KeyError, TypeError):
            return _problem(400, f"action must be one of {', '.join(ACTIONS)}")
        if ticket.stage in ("done", "closed", "rejected") and stage != "done":
            return _problem(409, f"item is {STATES[ticket.stage]}")
        ticket.stage = stage
        ticket.updated_at = max(datetime.now(BEIJING), ticket.updated_at + timedelta(seconds=1))
        answer = {"id": ticket.source_id, "state": STATES[stage], "replayed": False}
        if key:
            self.done[key] = answer
        return JSONResponse(answer)


def create_app(tickets: list[Ticket], *, seed: int = 7, api_key: str = API_KEY) -> ASGIApp:
    """书记在线's ASGI app over ``tickets`` (the world's ``shuji`` tickets)."""
    sandbox = ChannelSandbox("shuji", tickets, seed=seed)
    api = ShujiApi(sandbox, api_key)
    routes: list[BaseRoute] = [
        Route("/api/v2/items", api.items, methods=["GET"]),
        Route("/api/v2/items:batchGet", api.batch, methods=["GET"]),
        Route("/api/v2/items/{id}/actions", api.act, methods=["POST"]),
    ]
    return sandbox.build(routes)

"""A deliberately hostile channel (sandbox only, not mounted by ``make up``): everything a real channel
system has been seen to do wrong at once, for the conformance kit to run connectors against.

* odd encodings: bodies in GB18030 (declared), behind a UTF-8 byte-order mark, with characters
  outside the BMP (𠮷) that GBK cannot carry;
* duplicate ids across pages: every page repeats the last item of the page before;
* out-of-order updates: items within a page are shuffled, and a stale copy of an already changed
  item (an older ``ver``) turns up later, as from a lagging replica;
* huge pages: ``size`` is ignored — pages hold ``PAGE`` items whatever was asked;
* slow answers: every list answer takes ``latency`` seconds;
* one broken item: a time that does not read (it must be quarantined, nothing else).

``GET /feed?from&to&page&size`` (bearer token) lists items with ``ts`` in ``[from, to)`` (ISO-8601);
``GET /feed/{id}`` answers one item or 404.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

__all__ = ["PAGE", "TOKEN", "create_app"]

TOKEN = "sandbox-hostile-token"
PAGE = 40
BEIJING = ZoneInfo("Asia/Shanghai")
STAGES = {"new": "N", "accepted": "A", "processing": "P", "done": "D", "closed": "C", "rejected": "X"}


def _stale_at(ticket: Ticket) -> datetime:
    """When the stale copy was current: halfway between receipt and the last update."""
    return (ticket.received_at + (ticket.updated_at - ticket.received_at) / 2).replace(microsecond=0)


def _item(ticket: Ticket, *, stale: bool = False, broken: bool = False) -> dict[str, Any]:
    at = _stale_at(ticket) if stale else ticket.updated_at
    return {"id": ticket.source_id, "ver": int(at.timestamp()), "head": {"t": f"𠮷{ticket.title}"},
            "txt": ticket.content, "st": "N" if stale else STAGES[ticket.stage],
            "ts": "not a time" if broken else at.astimezone(BEIJING).strftime("%Y/%m/%d %H:%M:%S"),
            "opened": ticket.received_at.astimezone(BEIJING).strftime("%Y/%m/%d %H:%M:%S"),
            "where": [ticket.street, ticket.community, ticket.address]}


def _encode(payload: Any) -> Response:
    body = "\ufeff" + json.dumps(payload, ensure_ascii=False)
    return Response(body.encode("gb18030"), media_type="application/json; charset=GB18030")


class HostileApi:
    def __init__(self, sandbox: ChannelSandbox, latency: float, seed: int) -> None:
        self.sandbox = sandbox
        self.latency = latency
        self.seed = seed
        ordered = sorted(sandbox.tickets.values(), key=lambda t: t.source_id)
        # these also have an older copy around
        self.stale = {t.source_id for t in ordered[1::7]
                      if t.updated_at - t.received_at > timedelta(minutes=2)}
        self.broken = ordered[-1].source_id if len(ordered) > 3 else None

    def authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _rows(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for t in self.sandbox.visible():
            if start <= t.updated_at < end:
                rows.append(_item(t, broken=t.source_id == self.broken))
            if t.source_id in self.stale and start <= _stale_at(t) < end:
                rows.append(_item(t, stale=True))
        return rows

    async def feed(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"err": "auth"}, status_code=401)
        await asyncio.sleep(self.latency)
        try:
            start = datetime.fromisoformat(request.query_params["from"])
            end = datetime.fromisoformat(request.query_params["to"])
            page = int(request.query_params.get("page", 1))
        except (KeyError, ValueError):
            return JSONResponse({"err": "from, to (ISO-8601) and page are required"}, status_code=400)
        rows = self._rows(start, end)
        chunk = rows[max(0, (page - 1) * PAGE - 1): page * PAGE]  # repeats the previous page's last item
        random.Random(f"{self.seed}:{page}:{start}").shuffle(chunk)
        return _encode({"result": {"list": chunk, "more": page * PAGE < len(rows)}})

    async def one(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"err": "auth"}, status_code=401)
        ticket = self.sandbox.get(request.path_params["id"])
        if ticket is None:
            return JSONResponse({"err": "not found"}, status_code=404)
        return _encode({"result": _item(ticket)})


def create_app(tickets: list[Ticket], *, seed: int = 7, latency: float = 0.05) -> ASGIApp:
    """The hostile channel over ``tickets`` (any channel's tickets will do)."""
    sandbox = ChannelSandbox("hostile", tickets, seed=seed)
    api = HostileApi(sandbox, latency, seed)
    routes: list[BaseRoute] = [Route("/feed", api.feed, methods=["GET"]),
                               Route("/feed/{id}", api.one, methods=["GET"])]
    return sandbox.build(routes)

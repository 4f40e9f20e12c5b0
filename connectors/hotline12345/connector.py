"""The 12345 government hotline connector: OAuth2 client credentials, keyset paging by ``updatedAfter``,
batch get (≤50), signed webhooks and write-back of 签收/回复/办结/退单."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from connectors.auth import ClientCredentials
from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import AuthenticationFailed, BadRecord, ConfigError, UpstreamRejected, WebhookRejected
from connectors.hotline12345.records import (
    BEIJING,
    RETURNED_WORD,
    STATUS,
    TIME_FORMAT,
    Hotline12345Source,
    order_to_record,
    order_to_source,
    parse_time,
)
from connectors.hotline12345.webhook import WebhookVerifier
from connectors.http import send
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult, utc_now

__all__ = ["Hotline12345Connector"]

log = logging.getLogger(__name__)

BATCH_LIMIT = 50
MAX_PAGE = 100
ACTION_TYPES = {WriteBackKind.SIGN: "qianshou", WriteBackKind.REPLY: "huifu",
                WriteBackKind.RESOLVE: "banjie", WriteBackKind.RETURN: "tuidan"}


def _fingerprint(order: Mapping[str, Any]) -> str:
    canonical = json.dumps(order, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass
class _Cursor:
    """Where a sync stands: the last gxsj delivered, the orders delivered at exactly that second,
    and — while a pass is under way — the hotline's own cursor for its next page.

    Within a pass the hotline's keyset cursor is exact, so a resume continues with it. A new
    pass asks for everything from the last second on (gxsj has whole seconds only:
    ``updatedAfter`` = one second earlier) and skips the orders already delivered unchanged; an
    order changed again within that second has another fingerprint and comes through.
    """

    gxsj: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # gdbh → fingerprint, for orders at ``gxsj``
    pass_after: str | None = None  # the updatedAfter of the pass under way
    pass_next: str | None = None   # the hotline's cursor for that pass's next page

    @classmethod
    def load(cls, cursor: str | None) -> _Cursor:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            gxsj = data["gxsj"]
            if gxsj is not None:
                parse_time(gxsj)
            after, upstream = data.get("pass") or (None, None)
            return cls(gxsj, {str(k): str(v) for k, v in dict(data.get("seen", {})).items()},
                       None if after is None else str(after), None if upstream is None else str(upstream))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("hotline12345: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls()

    def dump(self) -> str:
        under_way = [self.pass_after, self.pass_next] if self.pass_next else None
        return json.dumps({"gxsj": self.gxsj, "seen": self.seen, "pass": under_way}, ensure_ascii=False,
                          separators=(",", ":"))

    def query(self, since: str | None) -> dict[str, str]:
        """Parameters of the next request: the pass under way, or a new pass."""
        if self.pass_next:
            query = {"cursor": self.pass_next}
            if self.pass_after:
                query["updatedAfter"] = self.pass_after
            return query
        self.pass_after = since if self.gxsj is None else (
            (parse_time(self.gxsj) - timedelta(seconds=1)).astimezone(BEIJING).strftime(TIME_FORMAT))
        return {} if self.pass_after is None else {"updatedAfter": self.pass_after}

    def delivered(self, gdbh: str, gxsj: str, fingerprint: str) -> bool:
        return gxsj == self.gxsj and self.seen.get(gdbh) == fingerprint

    def advance(self, gdbh: str, gxsj: str, fingerprint: str) -> None:
        try:
            parse_time(gxsj)
        except ValueError:
            return  # an unreadable time cannot move the cursor; the order itself is quarantined
        if self.gxsj is None or gxsj > self.gxsj:  # the fixed format sorts as text
            self.gxsj, self.seen = gxsj, {}
        if gxsj == self.gxsj:
            self.seen[gdbh] = fingerprint


class Hotline12345Connector(Connector):
    """12345 government hotline (12345热线).

    Credentials: ``client_id``, ``client_secret`` (OAuth2 client credentials), ``webhook_secret``
    (verifies pushed ``workorder.updated`` events; without it webhooks are rejected).
    Options: ``page_size`` (1–100, default 100), ``token_url`` (default ``<base_url>/oauth/token``),
    ``token_leeway`` (seconds to refresh before expiry, default 30), ``since`` (Beijing time
    ``yyyy-MM-dd HH:mm:ss`` where a first sync starts; default: everything),
    ``webhook_tolerance`` (seconds, default 300).
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="hotline12345", name="12345热线", kind="rest",
        capabilities=Capabilities(pull=True, push=True, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = Hotline12345Source

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        credentials, options = config.credentials, config.options
        problems = [f"{config.key}: credentials.{name} is required" for name in ("client_id", "client_secret")
                    if not credentials.get(name)]
        try:
            self.page_size = int(options.get("page_size", MAX_PAGE))
            leeway = float(options.get("token_leeway", 30))
            tolerance = float(options.get("webhook_tolerance", 300))
        except (TypeError, ValueError):
            problems.append(f"{config.key}: options page_size, token_leeway and webhook_tolerance "
                            "must be numbers")
            self.page_size, leeway, tolerance = MAX_PAGE, 30.0, 300.0
        if not 1 <= self.page_size <= MAX_PAGE:
            problems.append(f"{config.key}: options.page_size must be 1–{MAX_PAGE}")
        self.since = self._since(options.get("since"), problems)
        if problems:
            raise ConfigError(problems)
        token_url = str(options.get("token_url") or f"{config.base_url.rstrip('/')}/oauth/token")
        self.auth = ClientCredentials(token_url, credentials["client_id"], credentials["client_secret"],
                                      leeway=leeway)
        secret = credentials.get("webhook_secret")
        self.verifier = WebhookVerifier(secret, tolerance=tolerance) if secret else None

    @staticmethod
    def _since(value: object, problems: list[str]) -> str | None:
        if value in (None, ""):
            return None
        try:
            parse_time(value)
        except ValueError:
            problems.append("options.since must be Beijing time yyyy-MM-dd HH:mm:ss")
            return None
        return str(value).strip()

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        client.auth = self.auth
        return client

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = await send(self.client, method, url, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamRejected(f"{method} {url}: answer is not a JSON object",
                                   status=response.status_code)
        return body

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = _Cursor.load(cursor)
        orders = await self._first_page(position)
        while True:
            yield self._page(orders, position)
            if not position.pass_next:
                return
            orders = await self._list(position)

    async def _list(self, position: _Cursor) -> list[Any]:
        query = position.query(self.since)
        body = await self._json("GET", "/api/v1/workorders", params={"limit": self.page_size, **query})
        orders = body.get("data")
        if not isinstance(orders, list):
            raise UpstreamRejected("GET /api/v1/workorders: answer has no data list")
        position.pass_next = str(body["nextCursor"]) if body.get("nextCursor") else None
        return orders

    async def _first_page(self, position: _Cursor) -> list[Any]:
        try:
            return await self._list(position)
        except AuthenticationFailed:
            raise
        except UpstreamRejected:
            if not position.pass_next:
                raise
        # The hotline no longer takes the cursor saved mid-pass (e.g. after an upgrade): start a
        # new pass from the last second delivered, which loses nothing.
        log.warning("hotline12345: saved page cursor refused; starting a new pass from %s", position.gxsj)
        position.pass_next = None
        return await self._list(position)

    def _page(self, orders: list[Any], position: _Cursor) -> ChangePage:
        records, rejected = [], []
        for order in orders:
            gdbh = str(order.get("gdbh", "")) if isinstance(order, dict) else ""
            gxsj = str(order.get("gxsj", "")) if isinstance(order, dict) else ""
            fingerprint = _fingerprint(order) if isinstance(order, dict) else ""
            if gdbh and position.delivered(gdbh, gxsj, fingerprint):
                continue  # delivered by the previous page or run, unchanged since
            try:
                records.append(order_to_record(order, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
            if gdbh:
                position.advance(gdbh, gxsj, fingerprint)
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=position.dump())

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        chunks = [ids[i:i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        for orders in await asyncio.gather(*(self._batch(chunk) for chunk in chunks)):
            for order in orders:
                try:
                    record = order_to_source(order)
                except BadRecord as bad:
                    log.warning("hotline12345: unreadable work order in batch answer: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _batch(self, chunk: list[str]) -> list[Any]:
        body = await self._json("POST", "/api/v1/workorders/batch", json={"ids": chunk})
        orders = body.get("data")
        if not isinstance(orders, list):
            raise UpstreamRejected("POST /api/v1/workorders/batch: answer has no data list")
        return orders

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                            now: datetime | None = None) -> ChangePage:
        if self.verifier is None:
            raise WebhookRejected(f"channel {self.config.key!r} has no webhook_secret configured")
        self.verifier.verify(headers, body, now or utc_now())
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("signed body is not JSON") from None
        if not isinstance(event, dict) or event.get("event") != "workorder.updated":
            return ChangePage()  # an event we do not consume: acknowledged, nothing to ingest
        data = event.get("data")
        records, rejected = [], []
        for order in data if isinstance(data, list) else [data]:
            try:
                records.append(order_to_record(order, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
        return ChangePage(records=tuple(records), rejected=tuple(rejected))

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        payload = {"type": ACTION_TYPES[action.kind], "czid": action.action_id, "nr": action.message,
                   "czr": action.actor, "bm": action.department or ""}
        url = f"/api/v1/workorders/{quote(action.source_id, safe='')}/actions"
        body = await self._json("POST", url, json=payload)
        order = body.get("data")
        if not isinstance(order, dict):
            order = {}
        code = str(order.get("zt", ""))
        word = STATUS[code][0] if code in STATUS else None
        if code == "1" and str(order.get("tdbz", "")) == "1":
            word = RETURNED_WORD
        return WriteBackResult(action_id=action.action_id, accepted=True,
                               duplicate=bool(body.get("duplicate")), source_status=word)

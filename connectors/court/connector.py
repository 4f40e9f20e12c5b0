"""The court's pre-litigation mediation (诉前调解) connector: HMAC-signed REST/JSON, offset paging made safe
by re-querying from the newest updatedAt seen, batch get (≤20) and idempotent feedback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.court.records import CourtSource, case_to_record, case_to_source, format_time, parse_time
from connectors.court.signing import HmacSigner
from connectors.errors import BadRecord, ConfigError, UpstreamRejected
from connectors.http import send
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult

__all__ = ["CourtConnector"]

log = logging.getLogger(__name__)

BATCH_LIMIT = 20
MAX_LIMIT = 50
FEEDBACK_TYPES = {WriteBackKind.SIGN: "ACCEPT", WriteBackKind.REPLY: "PROGRESS",
                  WriteBackKind.RESOLVE: "CLOSE", WriteBackKind.RETURN: "RETURN"}
LIST_PATH = "/api/v2/mediations"


@dataclass
class _Cursor:
    """Where a sync stands: the newest updatedAt delivered, the cases delivered at exactly that time, and
    the offset within that time (only when more cases share it than fit one page).

    Offsets shift while cases change (a changed case moves to the end), so each page is asked from
    ``modifiedSince`` = the newest updatedAt delivered, offset 0, skipping the cases already delivered at
    that instant. A changed case gets a newer updatedAt and comes again.
    """

    since: datetime | None = None
    seen: set[str] = field(default_factory=set)
    offset: int = 0

    @classmethod
    def load(cls, cursor: str | None, start: datetime | None) -> _Cursor:
        if not cursor:
            return cls(since=start)
        try:
            data = json.loads(cursor)
            since = None if data["since"] is None else parse_time(data["since"])
            return cls(since, {str(s) for s in data.get("seen", [])}, max(0, int(data.get("offset", 0))))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("court: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls(since=start)

    def dump(self) -> str:
        since = None if self.since is None else format_time(self.since)
        return json.dumps({"since": since, "seen": sorted(self.seen), "offset": self.offset},
                          ensure_ascii=False, separators=(",", ":"))

    def params(self, limit: int) -> dict[str, str | int]:
        params: dict[str, str | int] = {"offset": self.offset, "limit": limit}
        if self.since is not None:
            params["modifiedSince"] = format_time(self.since)
        return params

    def advance(self, stamped: list[tuple[datetime, str]], count: int, full: bool) -> None:
        """Move past a page of ``count`` cases, ``stamped`` the readable (updatedAt, caseNo) of them."""
        newest = max((at for at, _ in stamped), default=None)
        if newest is not None and (self.since is None or newest > self.since):
            self.since, self.offset = newest, 0
            self.seen = {case_no for at, case_no in stamped if at == newest}
            return
        self.seen |= {case_no for at, case_no in stamped if at == self.since}
        # a full page all at ``since`` (or unreadable): more cases share this instant than fit a page;
        # walk on by offset, or the same page would come back for ever
        self.offset = self.offset + count if full else 0


def _stamp(case: object) -> tuple[datetime, str] | None:
    if not isinstance(case, Mapping):
        return None
    try:
        return parse_time(case.get("updatedAt")), str(case["caseNo"])
    except (ValueError, KeyError):
        return None


class CourtConnector(Connector):
    """Court pre-litigation mediation (诉前调解).

    Credentials: ``app_key``, ``app_secret`` (HMAC request signing).
    Options: ``limit`` (page size, 1–50, default 50), ``since`` (ISO-8601 with a zone where a first sync
    starts; default: everything).
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="court", name="诉前调解", kind="rest",
        capabilities=Capabilities(pull=True, push=False, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = CourtSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        problems = [f"{config.key}: credentials.{name} is required" for name in ("app_key", "app_secret")
                    if not config.credentials.get(name)]
        try:
            self.limit = int(config.options.get("limit", MAX_LIMIT))
        except (TypeError, ValueError):
            problems.append(f"{config.key}: options.limit must be an integer")
            self.limit = MAX_LIMIT
        if not 1 <= self.limit <= MAX_LIMIT:
            problems.append(f"{config.key}: options.limit must be 1–{MAX_LIMIT}")
        self.since: datetime | None = None
        since = config.options.get("since")
        if since not in (None, ""):
            try:  # YAML may already have made a datetime of it
                self.since = parse_time(since.isoformat() if isinstance(since, datetime) else since)
            except ValueError:
                problems.append(f"{config.key}: options.since must be ISO-8601 with a time zone")
        if problems:
            raise ConfigError(problems)
        self.auth = HmacSigner(config.credentials["app_key"], config.credentials["app_secret"])

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        client.auth = self.auth
        return client

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = await send(self.client, method, url, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise UpstreamRejected(f"{method} {url}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise UpstreamRejected(f"{method} {url}: answer is not a JSON object")
        return body

    async def _post(self, url: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        # UTF-8 as is (not \\u escapes): the signature covers these exact bytes
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return await self._call("POST", url, content=content,
                                headers={"Content-Type": "application/json; charset=utf-8"})

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = _Cursor.load(cursor, self.since)
        while True:
            body = await self._call("GET", LIST_PATH, params=position.params(self.limit))
            items = body.get("items")
            if not isinstance(items, list):
                raise UpstreamRejected(f"GET {LIST_PATH}: answer has no items list")
            yield self._page(items, position)
            if len(items) < self.limit:
                return

    def _page(self, items: list[Any], position: _Cursor) -> ChangePage:
        records, rejected, stamped = [], [], []
        for item in items:
            stamp = _stamp(item)
            if stamp is not None:
                stamped.append(stamp)
                if stamp[0] == position.since and stamp[1] in position.seen:
                    continue  # delivered by the previous page or run, unchanged since
            try:
                records.append(case_to_record(item, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
        position.advance(stamped, len(items), full=len(items) >= self.limit)
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=position.dump())

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        chunks = [ids[i:i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        for items in await asyncio.gather(*(self._batch_get(chunk) for chunk in chunks)):
            for item in items:
                try:
                    record = case_to_source(item)
                except BadRecord as bad:
                    log.warning("court: unreadable case in batchGet answer: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _batch_get(self, chunk: list[str]) -> list[Any]:
        body = await self._post(f"{LIST_PATH}:batchGet", {"caseNos": chunk})
        items = body.get("items")
        if not isinstance(items, list):
            raise UpstreamRejected(f"POST {LIST_PATH}:batchGet: answer has no items list")
        return items

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        payload = {"caseNo": action.source_id, "requestId": action.action_id,
                   "type": FEEDBACK_TYPES[action.kind], "content": action.message, "operator": action.actor}
        if action.department:
            payload["department"] = action.department
        body = await self._post(f"{LIST_PATH}/feedback", payload)
        state, duplicate = body.get("state"), bool(body.get("duplicate"))
        return WriteBackResult(action_id=action.action_id, accepted=True, duplicate=duplicate,
                               source_status=None if state is None else str(state))

"""The Open311 GeoReport v2 connector: time windows over requested_datetime under the 1,000 cap, a trailing
re-poll for status changes, batch get by ``service_request_id`` (≤50) and write-back through the
servicerequestupdates extension where the endpoint offers it. Any GeoReport v2 endpoint can be plugged in."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import BadRecord, ConfigError, UpstreamRejected, UpstreamUnavailable
from connectors.http import send
from connectors.open311.records import Open311Source, request_to_record, request_to_source, w3c
from connectors.open311.windows import MAX_SPAN, MIN_SPAN, Cursor, chunks, halves
from connectors.open311.wire import GeoReportError, parse_rows, translate_errors
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult, utc_now

__all__ = ["Open311Connector"]

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")  # where a bare ``since`` date starts
BATCH_LIMIT = 50
DEFAULT_CAP = 1000
DEFAULT_BACKFILL = timedelta(days=90)
UNSUPPORTED = (404, 405, 501)  # no such route: the endpoint does not offer servicerequestupdates
DEFAULT_WORDS = {WriteBackKind.SIGN: "已签收", WriteBackKind.REPLY: "处理进展",
                 WriteBackKind.RESOLVE: "已处理完毕", WriteBackKind.RETURN: "退回：非本单位职责"}

Window = tuple[datetime, datetime]


def _since(value: Any) -> datetime:
    """``since``: an ISO date (Beijing midnight) or an ISO-8601 time with a zone."""
    text = str(value).strip()
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if len(text) > 10:
            raise ValueError("an ISO-8601 time needs a zone")
        moment = moment.replace(tzinfo=BEIJING)
    return moment


def _int_option(options: Mapping[str, Any], name: str, default: int, low: int, high: int,
                problems: list[str], key: str) -> int:
    try:
        value = int(options.get(name, default))
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        problems.append(f"{key}: options.{name} must be an integer {low}–{high}")
        return default
    return value


def _updates_option(value: Any) -> bool | None:
    """``updates``: true, false or auto (``None``: find out on the first write-back)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("auto", ""):
        return None
    if word in ("true", "yes", "1", "false", "no", "0"):
        return word in ("true", "yes", "1")
    raise ValueError(word)


class Open311Connector(Connector):
    """Any Open311 GeoReport v2 endpoint (城市服务).

    Credentials: ``api_key`` (only needed for write-back; may also be given as ``options.api_key``).
    Options: ``jurisdiction_id``; ``format`` (``json`` default, or ``xml``); ``since`` (where a backfill
    starts: an ISO date taken as Beijing midnight, or ISO-8601 with a zone; default 90 days ago);
    ``reopen_days`` (trailing days re-polled each pass for status changes, default 7, 0 = off);
    ``window_days`` (longest window, 1–90, default 30); ``max_results`` (the endpoint's cap, default 1000);
    ``updates`` (the servicerequestupdates extension: ``auto`` default — assumed until the endpoint shows
    it has none —, ``true`` or ``false``).
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="open311", name="城市服务（Open311）", kind="open311",
        capabilities=Capabilities(pull=True, push=False, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = Open311Source

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        options, key, problems = config.options, config.key, []
        self.api_key = str(config.credentials.get("api_key") or options.get("api_key") or "") or None
        self.jurisdiction_id = str(options.get("jurisdiction_id") or config.credentials.get(
            "jurisdiction_id") or "") or None
        self.format = str(options.get("format", "json")).lower()
        if self.format not in ("json", "xml"):
            problems.append(f"{key}: options.format must be json or xml")
        self.since: datetime | None = None
        if options.get("since") not in (None, ""):
            try:
                self.since = _since(options["since"])
            except ValueError:
                problems.append(f"{key}: options.since must be an ISO date or ISO-8601 with a zone")
        self.reopen = timedelta(days=_int_option(options, "reopen_days", 7, 0, 90, problems, key))
        self.window = timedelta(days=_int_option(options, "window_days", 30, 1, 90, problems, key))
        self.cap = _int_option(options, "max_results", DEFAULT_CAP, 1, 1_000_000, problems, key)
        try:
            self.updates = _updates_option(options.get("updates", "auto"))
        except ValueError:
            problems.append(f"{key}: options.updates must be auto, true or false")
            self.updates = None
        if problems:
            raise ConfigError(problems)
        if self.api_key is None:
            self.updates = False  # every update needs an api_key

    def describe(self) -> ConnectorInfo:
        """As the base, with ``write_back`` as far as the endpoint is known to accept updates."""
        described = super().describe()
        capabilities = dataclasses.replace(described.capabilities, write_back=self.updates is not False)
        return dataclasses.replace(described, capabilities=capabilities)

    def build_client(self) -> httpx.AsyncClient:
        """The base client, with a response hook that turns GeoReport error lists into typed errors."""
        client = super().build_client()
        client.event_hooks = {"request": [], "response": [translate_errors]}
        return client

    def _params(self, **params: str) -> dict[str, str]:
        if self.jurisdiction_id:
            params["jurisdiction_id"] = self.jurisdiction_id
        return params

    async def _search(self, window: Window) -> list[Any]:
        params = self._params(start_date=w3c(window[0]), end_date=w3c(window[1]))
        response = await send(self.client, "GET", f"/requests.{self.format}", params=params)
        return parse_rows(response, self.format)

    # -- changes ---------------------------------------------------------------------------------

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = Cursor.load(cursor)
        now = utc_now().replace(microsecond=0)
        floor = self.since or now - DEFAULT_BACKFILL
        if position.sweep is None:
            started = position.until
            for window in chunks(started or floor, now, min(self.window, MAX_SPAN)):
                async for done, rows, overflow in self._walk(window):
                    position.until = done[1]
                    yield self._page(rows, done, overflow, position)
            sweep_from = max(floor, now - self.reopen)
            if started is not None and self.reopen and sweep_from < started:
                position.sweep = (sweep_from, started)  # the first backfill covered these days itself
        if position.sweep is not None:
            sweep_end = position.sweep[1]
            for window in chunks(position.sweep[0], sweep_end, min(self.window, MAX_SPAN)):
                async for done, rows, overflow in self._walk(window):
                    position.sweep = (done[1], sweep_end) if done[1] < sweep_end else None
                    yield self._page(rows, done, overflow, position)

    async def _walk(self, window: Window) -> AsyncIterator[tuple[Window, list[Any], bool]]:
        """Each completed window in time order with its rows; a window at the cap is cut in halves."""
        pending: deque[Window] = deque([window])
        while pending:
            current = pending.popleft()
            rows = await self._search(current)
            capped = len(rows) >= self.cap
            if capped and current[1] - current[0] > MIN_SPAN:
                pending.extendleft(reversed(halves(*current)))
                continue
            if capped:
                # end_date is inclusive, so the requests of the next second may be what filled the
                # answer: ask for this second alone before calling anything hidden
                rows = await self._search((current[0], current[0]))
                capped = len(rows) >= self.cap
            yield current, rows, capped

    def _page(self, rows: list[Any], window: Window, overflow: bool, position: Cursor) -> ChangePage:
        records, rejected = [], []
        for row in rows:
            try:
                record = request_to_record(row, self.config.key)
            except BadRecord as bad:
                rejected.append(bad)
                continue
            if window[0] <= record.received_at < window[1]:  # end_date is inclusive: the next window has it
                records.append(record)
        if overflow:
            rejected.append(BadRecord(None, f"more than {self.cap} requests between {w3c(window[0])} and "
                                            f"{w3c(window[1])}: the endpoint's cap hid the rest", None))
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=position.dump())

    # -- live detail -----------------------------------------------------------------------------

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        listable = [i for i in ids if "," not in i]  # a comma would split the id in the list form
        chunks_ = [listable[i:i + BATCH_LIMIT] for i in range(0, len(listable), BATCH_LIMIT)]
        calls = [self._by_ids(chunk) for chunk in chunks_] + [self._one(i) for i in ids if "," in i]
        for rows in await asyncio.gather(*calls):
            for row in rows:
                try:
                    record = request_to_source(row)
                except BadRecord as bad:
                    log.warning("open311: unreadable request in answer: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _by_ids(self, chunk: list[str]) -> list[Any]:
        params = self._params(service_request_id=",".join(chunk))
        response = await send(self.client, "GET", f"/requests.{self.format}", params=params)
        return parse_rows(response, self.format)

    async def _one(self, request_id: str) -> list[Any]:
        path = f"/requests/{quote(request_id, safe='')}.{self.format}"
        try:
            return parse_rows(await send(self.client, "GET", path, params=self._params()), self.format)
        except GeoReportError as exc:
            if exc.status == 404:
                return []
            raise

    # -- write-back ------------------------------------------------------------------------------

    def _unsupported(self, why: str) -> UpstreamRejected:
        return UpstreamRejected(f"{self.config.key}: the Open311 endpoint does not accept updates ({why}); "
                                "GeoReport v2 itself has no way to update a request")

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        if self.updates is False:
            why = "no api_key configured" if self.api_key is None else "it offers no servicerequestupdates"
            raise self._unsupported(why)
        description = action.message or DEFAULT_WORDS[action.kind]
        if action.kind is WriteBackKind.RETURN and action.message:
            description = f"{DEFAULT_WORDS[action.kind]}。{action.message}"
        if action.department:
            description = f"【{action.department}】{description}"
        form = self._params(api_key=self.api_key or "", service_request_id=action.source_id,
                            update_id=action.action_id, updated_datetime=w3c(action.at),
                            status="CLOSED" if action.kind is WriteBackKind.RESOLVE else "OPEN",
                            description=description, account_id=action.actor)
        try:
            response = await send(self.client, "POST", f"/servicerequestupdates.{self.format}", data=form)
        except GeoReportError:
            raise  # the endpoint has the extension and refused this update (unknown request, …)
        except (UpstreamRejected, UpstreamUnavailable) as exc:
            if exc.status not in UNSUPPORTED:
                raise
            self.updates = False
            raise self._unsupported(f"POST /servicerequestupdates answered {exc.status}") from None
        self.updates = True
        return self._result(action, parse_rows(response, self.format))

    def _result(self, action: WriteBackAction, rows: list[Any]) -> WriteBackResult:
        row = rows[0] if rows and isinstance(rows[0], dict) else {}
        duplicate = str(row.get("duplicate", "false")).lower() == "true"
        status, update_id = row.get("status"), row.get("update_id")
        return WriteBackResult(action_id=action.action_id, accepted=True, duplicate=duplicate,
                               source_status=None if status is None else str(status).lower(),
                               detail=None if update_id is None else f"update_id {update_id}")


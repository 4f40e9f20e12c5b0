"""The district-head hotline (区长热线) connector: API key in the query string, GBK bodies, 返回码
envelopes on HTTP 200, page/rows paging made safe by re-querying from the newest 更新时间 seen."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from connectors.auth import ApiKey
from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import AuthenticationFailed, BadRecord, ConfigError, UpstreamRejected
from connectors.http import send
from connectors.mayor.records import MayorSource, letter_to_record, letter_to_source, parse_ms
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult

__all__ = ["ApiKeyQuery", "MayorConnector", "decode_body"]

log = logging.getLogger(__name__)

BATCH_LIMIT = 20
MAX_ROWS = 100
OPERATIONS = {WriteBackKind.SIGN: "签收", WriteBackKind.REPLY: "回复", WriteBackKind.RESOLVE: "办结",
              WriteBackKind.RETURN: "退回"}
# Labels a legacy system declares for what is GBK (the WHATWG encoding standard reads them alike).
CHARSET_ALIASES = {"gb2312": "gbk", "x-gbk": "gbk", "cp936": "gbk"}
AUTH_CODES = frozenset({"1001"})  # apikey无效


class ApiKeyQuery(ApiKey):
    """Adds ``apikey=<key>`` to the query string of every request, as the system expects."""

    def __init__(self, api_key: str, param: str = "apikey") -> None:
        super().__init__(api_key, name=param, location="query")


def decode_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON envelope of an answer, decoded by its declared charset (GBK when none is declared).

    Bytes the charset cannot decode are kept as lone surrogates (``surrogateescape``) so that only
    the letters holding them become BadRecords; an unreadable envelope is UpstreamRejected.
    """
    where = f"{response.request.method} {response.request.url.path}"
    charset = (response.charset_encoding or "gbk").strip().lower()
    charset = CHARSET_ALIASES.get(charset, charset)
    try:
        body = json.loads(response.content.decode(charset, errors="surrogateescape"))
    except LookupError:
        raise UpstreamRejected(f"{where}: unknown charset {charset!r}") from None
    except ValueError:
        raise UpstreamRejected(f"{where}: answer is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamRejected(f"{where}: answer is not a JSON object")
    code, message = str(body.get("返回码", "")), str(body.get("返回信息", ""))
    if code in AUTH_CODES:
        raise AuthenticationFailed(f"{where}: {code} {message}", status=response.status_code)
    if code != "0000":
        raise UpstreamRejected(f"{where}: {code or 'no 返回码'} {message}", status=response.status_code)
    return body


@dataclass
class _Cursor:
    """Where a sync stands: the newest 更新时间 delivered, the letters delivered at exactly that time,
    and the page within that time (only when more letters share it than fit one page).

    Page numbers shift while letters change, so each page is asked from ``since`` = the newest
    更新时间 delivered, page 1, and the letters already delivered at that instant are skipped
    (deduplicated by (编号, 更新时间)). A changed letter gets a newer 更新时间 and comes again.
    """

    since: int = 0
    seen: set[str] = field(default_factory=set)
    page: int = 1

    @classmethod
    def load(cls, cursor: str | None, start: int) -> _Cursor:
        if not cursor:
            return cls(since=start)
        try:
            data = json.loads(cursor)
            return cls(int(data["since"]), {str(s) for s in data.get("seen", [])},
                       max(1, int(data.get("page", 1))))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("mayor: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls(since=start)

    def dump(self) -> str:
        return json.dumps({"since": self.since, "seen": sorted(self.seen), "page": self.page},
                          ensure_ascii=False, separators=(",", ":"))

    def advance(self, stamped: list[tuple[int, str]], full: bool) -> None:
        """Move past a page of (更新时间, 编号)."""
        newest = max((ms for ms, _ in stamped), default=None)
        if newest is not None and newest > self.since:
            self.since, self.page = newest, 1
            self.seen = {letter_id for ms, letter_id in stamped if ms == newest}
            return
        self.seen |= {letter_id for ms, letter_id in stamped if ms == self.since}
        # A full page all at ``since``: more letters share this instant than fit a page; walk on.
        self.page = self.page + 1 if full else 1


def _stamp(letter: object) -> tuple[int, str] | None:
    if not isinstance(letter, dict):
        return None
    try:
        return parse_ms(letter.get("更新时间")), str(letter["编号"])
    except (ValueError, KeyError):
        return None


class MayorConnector(Connector):
    """District-head hotline (区长热线).

    Credentials: ``api_key`` (sent as the ``apikey`` query parameter).
    Options: ``rows`` (page size, 1–100, default 20), ``since`` (epoch milliseconds where a first
    sync starts; default 0: everything).
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="mayor", name="区长热线", kind="rest",
        capabilities=Capabilities(pull=True, push=False, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = MayorSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        problems = [] if config.credentials.get("api_key") else [
            f"{config.key}: credentials.api_key is required"]
        try:
            self.rows = int(config.options.get("rows", 20))
            self.since = int(config.options.get("since", 0))
        except (TypeError, ValueError):
            problems.append(f"{config.key}: options rows and since must be integers")
            self.rows, self.since = 20, 0
        if not 1 <= self.rows <= MAX_ROWS:
            problems.append(f"{config.key}: options.rows must be 1–{MAX_ROWS}")
        if problems:
            raise ConfigError(problems)
        self.auth = ApiKeyQuery(config.credentials["api_key"])

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        client.auth = self.auth
        return client

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return decode_body(await send(self.client, method, url, **kwargs))

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = _Cursor.load(cursor, self.since)
        while True:
            body = await self._call("GET", "/api/letters.do", params={
                "since": position.since, "page": position.page, "rows": self.rows})
            letters = body.get("记录")
            if not isinstance(letters, list):
                raise UpstreamRejected("GET /api/letters.do: answer has no 记录 list")
            yield self._page(letters, position)
            if len(letters) < self.rows:
                return

    def _page(self, letters: list[Any], position: _Cursor) -> ChangePage:
        records, rejected, stamped = [], [], []
        for letter in letters:
            stamp = _stamp(letter)
            if stamp is not None:
                stamped.append(stamp)
                if stamp[0] == position.since and stamp[1] in position.seen:
                    continue  # delivered by the previous page or run, unchanged since
            try:
                records.append(letter_to_record(letter, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
        position.advance(stamped, full=len(letters) >= self.rows)
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=position.dump())

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        # a comma would split an id in the ids list; such an id cannot exist in this system
        askable = [i for i in ids if "," not in i and i.strip() == i and i]
        chunks = [askable[i:i + BATCH_LIMIT] for i in range(0, len(askable), BATCH_LIMIT)]
        for letters in await asyncio.gather(*(self._detail(chunk) for chunk in chunks)):
            for letter in letters:
                try:
                    record = letter_to_source(letter)
                except BadRecord as bad:
                    log.warning("mayor: unreadable letter in detail answer: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _detail(self, chunk: list[str]) -> list[Any]:
        body = await self._call("GET", "/api/letter_detail.do", params={"ids": ",".join(chunk)})
        letters = body.get("记录")
        if not isinstance(letters, list):
            raise UpstreamRejected("GET /api/letter_detail.do: answer has no 记录 list")
        return letters

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        form = {"编号": action.source_id, "操作": OPERATIONS[action.kind], "内容": action.message,
                "操作人": action.actor, "操作流水号": action.action_id}
        if action.department:
            form["承办单位"] = action.department
        # The system reads GBK only; a character GBK lacks is sent as '?' rather than failing the action.
        content = urlencode(form, encoding="gbk", errors="replace")
        body = await self._call("POST", "/api/reply.do", content=content.encode("ascii"), headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=GBK"})
        status = body.get("办理状态")
        return WriteBackResult(action_id=action.action_id, accepted=True,
                               duplicate=bool(body.get("是否重复")),
                               source_status=str(status) if status else None)

"""The petition system (信访) connector: SOAP 1.1 with WS-Security UsernameToken, modified-time windows with
page numbers made safe by re-querying from the newest 更新时间 delivered, batch get (≤30) and idempotent
feedback by 流水号."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

import httpx

from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import BadRecord, ConfigError
from connectors.http import send
from connectors.petition.records import (
    BEIJING,
    PetitionSource,
    format_time,
    item_to_record,
    item_to_source,
    parse_time,
)
from connectors.petition.soap import (
    CONTENT_TYPE,
    SOAP_ACTION_PREFIX,
    envelope,
    parse_answer,
    serialize,
    translate_fault,
    xf,
)
from connectors.petition.wsse import UsernameToken
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult, utc_now

__all__ = ["PetitionConnector"]

log = logging.getLogger(__name__)

SERVICE_PATH = "/ws/PetitionService"
BATCH_LIMIT = 30
MAX_PAGE_SIZE = 50
EARLIEST = "20000101000000"
ACTIONS = {WriteBackKind.SIGN: "受理", WriteBackKind.REPLY: "答复", WriteBackKind.RESOLVE: "办结",
           WriteBackKind.RETURN: "退回"}


def _fingerprint(item: Element) -> str:
    return hashlib.blake2b(serialize(item), digest_size=8).hexdigest()


@dataclass
class _Cursor:
    """Where a sync stands: the newest 更新时间 delivered (Beijing text), the petitions delivered at exactly
    that second with a fingerprint of what was delivered, and the page number within that second (only
    when more petitions share it than fit a page).

    Page numbers shift while petitions change (a changed petition moves to the end), so each page is
    asked from ``modifiedFrom`` = the newest 更新时间 delivered, page 1, skipping petitions already
    delivered unchanged at that second; one changed again within the same second has another fingerprint
    and comes through.
    """

    since: str | None = None
    seen: dict[str, str] = field(default_factory=dict)
    page: int = 1

    @classmethod
    def load(cls, cursor: str | None, start: str | None) -> _Cursor:
        if not cursor:
            return cls(since=start)
        try:
            data = json.loads(cursor)
            since = data["since"]
            if since is not None:
                parse_time(since)
            seen = {str(k): str(v) for k, v in dict(data.get("seen", {})).items()}
            return cls(since, seen, max(1, int(data.get("page", 1))))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("petition: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls(since=start)

    def dump(self) -> str:
        return json.dumps({"since": self.since, "seen": self.seen, "page": self.page}, ensure_ascii=False,
                          separators=(",", ":"))

    def delivered(self, stamp: tuple[str, str, str]) -> bool:
        at, petition_no, fingerprint = stamp
        return at == self.since and self.seen.get(petition_no) == fingerprint

    def advance(self, stamped: list[tuple[str, str, str]], full: bool) -> None:
        """Move past a page, ``stamped`` the readable (更新时间, 编号, fingerprint) of its items."""
        newest = max((at for at, _, _ in stamped), default=None)  # the fixed format sorts as text
        if newest is not None and (self.since is None or newest > self.since):
            self.since, self.page = newest, 1
            self.seen = {no: fp for at, no, fp in stamped if at == newest}
            return
        self.seen.update({no: fp for at, no, fp in stamped if at == self.since})
        # a full page all at ``since`` (or unreadable): more petitions share this second than fit a page
        self.page = self.page + 1 if full else 1


def _stamp(item: Element) -> tuple[str, str, str] | None:
    petition_no, at = item.findtext(xf("信访件编号")), item.findtext(xf("更新时间"))
    if not petition_no or at is None:
        return None
    try:
        parse_time(at.strip())
    except ValueError:
        return None
    return at.strip(), petition_no.strip(), _fingerprint(item)


def _beijing_start(value: Any) -> str:
    """``since``: Beijing ``yyyyMMddHHmmss``, an ISO date (Beijing midnight) or ISO-8601 with a zone."""
    text = str(value).strip()
    if text.isdigit():
        parse_time(text)
        return text
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if len(text) > 10:
            raise ValueError("an ISO-8601 time needs a zone")
        moment = moment.replace(tzinfo=BEIJING)
    return format_time(moment)


class PetitionConnector(Connector):
    """The petition system (信访信息系统), over SOAP 1.1.

    Credentials: ``username``, ``password`` (WS-Security UsernameToken, PasswordDigest).
    Options: ``page_size`` (1–50, default 50), ``since`` (where a first sync starts: Beijing
    ``yyyyMMddHHmmss``, an ISO date taken as Beijing midnight, or ISO-8601 with a zone; default:
    everything).
    Write-back is SubmitFeedback: SIGN 受理, REPLY 答复, RESOLVE 办结, RETURN 退回, with ``serialNo`` =
    the action id, ``operator`` = the acting user and ``department`` = the acting unit.
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="petition", name="信访", kind="soap",
        capabilities=Capabilities(pull=True, push=False, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = PetitionSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        problems = [f"{config.key}: credentials.{name} is required" for name in ("username", "password")
                    if not config.credentials.get(name)]
        try:
            self.page_size = int(config.options.get("page_size", MAX_PAGE_SIZE))
        except (TypeError, ValueError):
            problems.append(f"{config.key}: options.page_size must be an integer")
            self.page_size = MAX_PAGE_SIZE
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            problems.append(f"{config.key}: options.page_size must be 1–{MAX_PAGE_SIZE}")
        self.since: str | None = None
        if config.options.get("since") not in (None, ""):
            try:
                self.since = _beijing_start(config.options["since"])
            except ValueError:
                problems.append(f"{config.key}: options.since must be yyyyMMddHHmmss, an ISO date or "
                                "ISO-8601 with a zone")
        if problems:
            raise ConfigError(problems)
        self.auth = UsernameToken(config.credentials["username"], config.credentials["password"])

    def build_client(self) -> httpx.AsyncClient:
        """The base client plus the WS-Security flow, and a response hook that turns SOAP faults (HTTP 500)
        into typed errors before :func:`connectors.http.send` would call every 500 server trouble."""
        client = super().build_client()
        client.auth = self.auth
        client.event_hooks = {"request": [], "response": [translate_fault]}
        return client

    async def _call(self, operation: str, fields: dict[str, str | list[str]]) -> Element:
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTION_PREFIX}{operation}"'}
        response = await send(self.client, "POST", SERVICE_PATH, content=envelope(operation, fields),
                              headers=headers)
        return parse_answer(response.content, operation)

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = _Cursor.load(cursor, self.since)
        until = format_time(utc_now())  # fixed for the pass, so a busy channel cannot keep it going
        while True:
            page_no = position.page
            answer = await self._call("QueryPetitions", {
                "modifiedFrom": position.since or EARLIEST, "modifiedTo": max(until, position.since or until),
                "pageNo": str(page_no), "pageSize": str(self.page_size)})
            items = answer.findall(f"{xf('items')}/{xf('item')}")
            yield self._page(items, position)
            total = (answer.findtext(xf("totalCount")) or "").strip()
            # the count also stops a server that ignores pageNo from serving one page for ever
            if len(items) < self.page_size or (total.isdigit() and page_no * self.page_size >= int(total)):
                return

    def _page(self, items: list[Element], position: _Cursor) -> ChangePage:
        records, rejected, stamped = [], [], []
        for item in items:
            stamp = _stamp(item)
            if stamp is not None:
                stamped.append(stamp)
                if position.delivered(stamp):
                    continue  # delivered by the previous page or run, unchanged since
            try:
                records.append(item_to_record(item, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
        position.advance(stamped, full=len(items) >= self.page_size)
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=position.dump())

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        chunks = [ids[i:i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        for items in await asyncio.gather(*(self._get_petitions(chunk) for chunk in chunks)):
            for item in items:
                try:
                    record = item_to_source(item)
                except BadRecord as bad:
                    log.warning("petition: unreadable item in GetPetitions answer: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _get_petitions(self, chunk: list[str]) -> list[Element]:
        answer = await self._call("GetPetitions", {"ids": chunk})
        return answer.findall(f"{xf('items')}/{xf('item')}")

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        fields: dict[str, str | list[str]] = {
            "petitionNo": action.source_id, "serialNo": action.action_id, "action": ACTIONS[action.kind],
            "content": action.message, "operator": action.actor}
        if action.department:
            fields["department"] = action.department
        answer = await self._call("SubmitFeedback", fields)
        status = answer.findtext(xf("status"))
        return WriteBackResult(action_id=action.action_id, accepted=True,
                               duplicate=(answer.findtext(xf("duplicate")) or "").strip() == "true",
                               source_status=None if status is None else status.strip(),
                               detail=answer.findtext(xf("message")))


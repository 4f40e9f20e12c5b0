"""The legal-aid (法律援助) connector: a GraphQL client with bearer auth, Relay keyset paging, batch lookup
(≤25) and idempotent feedback; a node the system could not render becomes a BadRecord."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import BadRecord, ConfigError, UpstreamRejected
from connectors.legalaid.client import BearerToken, FieldError, GraphQLClient, GraphQLResult
from connectors.legalaid.queries import APPLICATIONS, APPLICATIONS_BY_NO, RECORD_FEEDBACK
from connectors.legalaid.records import (
    LegalAidSource,
    application_to_record,
    application_to_source,
    parse_time,
    status_word,
)
from connectors.records import ChangePage, WriteBackAction, WriteBackKind, WriteBackResult

__all__ = ["LegalAidConnector"]

log = logging.getLogger(__name__)

BATCH_LIMIT = 25
MAX_FIRST = 100
FEEDBACK_KINDS = {WriteBackKind.SIGN: "ACCEPT", WriteBackKind.REPLY: "PROGRESS",
                  WriteBackKind.RESOLVE: "CLOSE", WriteBackKind.RETURN: "RETURN"}


@dataclass
class _Cursor:
    """The system's own keyset cursor (stable: ``after`` it comes everything that changed since, in
    order), plus the ``updatedSince`` the sync started from."""

    after: str | None = None
    since: str | None = None

    @classmethod
    def load(cls, cursor: str | None, since: str | None) -> _Cursor:
        if not cursor:
            return cls(since=since)
        try:
            data = json.loads(cursor)
            after, start = data.get("after"), data.get("since")
            return cls(None if after is None else str(after), None if start is None else str(start))
        except (ValueError, TypeError, AttributeError):
            log.warning("legalaid: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls(since=since)

    def dump(self) -> str:
        return json.dumps({"after": self.after, "since": self.since}, separators=(",", ":"))


def _where(path: tuple[str | int, ...], node_at: int) -> str:
    inner = ".".join(str(p) for p in path[node_at:])
    return inner or "node"


def _node_reason(errors: list[FieldError], node_at: int) -> str:
    return "; ".join(f"{_where(e.path, node_at)}: {e.message}" for e in errors)[:500]


class LegalAidConnector(Connector):
    """Legal aid (法律援助), over the legal-aid system's GraphQL API.

    Credentials: ``token`` (sent as ``Authorization: Bearer <token>``).
    Options: ``first`` (page size, 1–100, default 50), ``since`` (ISO-8601 with an offset where a first sync
    starts; default: everything), ``path`` (the GraphQL endpoint, default ``/graphql``).
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="legalaid", name="法律援助", kind="graphql",
        capabilities=Capabilities(pull=True, push=False, batch_get=True, write_back=True,
                                  batch_limit=BATCH_LIMIT))
    source_model: ClassVar[type[SourceRecord]] = LegalAidSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        options = config.options
        problems = [] if config.credentials.get("token") else [f"{config.key}: credentials.token is required"]
        try:
            self.first = int(options.get("first", 50))
        except (TypeError, ValueError):
            problems.append(f"{config.key}: options.first must be an integer")
            self.first = 50
        if not 1 <= self.first <= MAX_FIRST:
            problems.append(f"{config.key}: options.first must be 1–{MAX_FIRST}")
        self.since = self._since(options.get("since"), problems, config.key)
        self.path = str(options.get("path") or "/graphql")
        if problems:
            raise ConfigError(problems)
        self.auth = BearerToken(config.credentials["token"])

    @staticmethod
    def _since(value: object, problems: list[str], key: str) -> str | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            value = value.isoformat()
        try:
            parse_time(value)
        except ValueError:
            problems.append(f"{key}: options.since must be ISO-8601 with an offset")
            return None
        return str(value).strip()

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        client.auth = self.auth
        return client

    @property
    def graphql(self) -> GraphQLClient:
        return GraphQLClient(self.client, self.path)

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = _Cursor.load(cursor, self.since)
        while True:
            connection, result = await self.graphql.field("applications", APPLICATIONS, {
                "since": position.since, "first": self.first, "after": position.after}, "Applications")
            edges, info = connection.get("edges"), connection.get("pageInfo")
            if not isinstance(edges, list) or not isinstance(info, Mapping):
                raise UpstreamRejected(f"POST {self.path} Applications: answer has no edges/pageInfo")
            page = self._page(edges, result)
            if isinstance(info.get("endCursor"), str):
                position.after = info["endCursor"]
            yield page.model_copy(update={"cursor": position.dump()})
            if info.get("hasNextPage") is not True or not edges:
                return

    def _page(self, edges: list[Any], result: GraphQLResult) -> ChangePage:
        records, rejected = [], []
        for index, edge in enumerate(edges):
            node = edge.get("node") if isinstance(edge, Mapping) else None
            errors = result.errors_under("applications", "edges", index)
            if errors or not isinstance(node, Mapping):
                rejected.append(self._broken(node, edge, errors))
                continue
            try:
                records.append(application_to_record(node, self.config.key))
            except BadRecord as bad:
                rejected.append(bad)
        return ChangePage(records=tuple(records), rejected=tuple(rejected))

    @staticmethod
    def _broken(node: object, edge: object, errors: list[FieldError]) -> BadRecord:
        """A node the system could not render (in part: its errors' paths say which fields)."""
        reason = _node_reason(errors, node_at=4) if errors else "edge without a node"
        if isinstance(node, Mapping):
            number = node.get("applicationNo")
            return BadRecord(str(number) if number else None, reason, dict(node))
        return BadRecord(None, reason, edge)

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, SourceRecord | None] = dict.fromkeys(ids)
        chunks = [ids[i:i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        for nodes, result in await asyncio.gather(*(self._by_no(chunk) for chunk in chunks)):
            for index, node in enumerate(nodes):
                broken = result.errors_under("applicationsByNo", index)
                if broken:  # still shown: the fields that did render are worth having
                    log.warning("legalaid: application partly unreadable: %s", _node_reason(broken, 2))
                if node is None:
                    continue
                try:
                    record = application_to_source(node)
                except BadRecord as bad:
                    log.warning("legalaid: unreadable application in applicationsByNo: %s", bad)
                    continue
                if record.source_id in found:
                    found[record.source_id] = record
        return found

    async def _by_no(self, chunk: list[str]) -> tuple[list[Any], GraphQLResult]:
        nodes, result = await self.graphql.field("applicationsByNo", APPLICATIONS_BY_NO, {"nos": chunk},
                                                 "ApplicationsByNo")
        if not isinstance(nodes, list):
            raise UpstreamRejected(f"POST {self.path} ApplicationsByNo: answer is not a list")
        return nodes, result

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        answer, _ = await self.graphql.field("recordFeedback", RECORD_FEEDBACK, {"input": {
            "applicationNo": action.source_id, "requestId": action.action_id,
            "kind": FEEDBACK_KINDS[action.kind], "message": action.message, "operator": action.actor}},
            "RecordFeedback")
        if not isinstance(answer, Mapping):
            raise UpstreamRejected(f"POST {self.path} RecordFeedback: answer is not an object")
        if answer.get("ok") is not True:
            raise UpstreamRejected(f"recordFeedback refused: {answer.get('code')}: {answer.get('message')}")
        application = answer.get("application")
        status = None if not isinstance(application, Mapping) else status_word(
            application.get("status"), application.get("reviewDecision"))
        return WriteBackResult(action_id=action.action_id, accepted=True,
                               duplicate=answer.get("duplicate") is True, source_status=status)

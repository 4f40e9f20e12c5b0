"""The connector: declarations plus four hooks, built on the SDK in ``connectors`` only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors import (
    ApiKey,
    BadRecord,
    Capabilities,
    CaseRecord,
    ChangePage,
    ChannelConfig,
    ConfigError,
    Connector,
    ConnectorInfo,
    Party,
    Place,
    SourceRecord,
    UnifiedStatus,
    WriteBackAction,
    WriteBackResult,
    send,
)

STATES = {"open": UnifiedStatus.ACCEPTED, "answered": UnifiedStatus.RESOLVED}


class JianyiSource(SourceRecord):
    """A suggestion as the suggestions system shows it now."""

    title: str
    state: str


class JianyiConnector(Connector):
    """人民建议征集. Credentials: ``api_key``. Options: ``page_size`` (1–100, default 20)."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        key="jianyi", name="人民建议征集", kind="rest",
        capabilities=Capabilities(pull=True, batch_get=True, write_back=True, batch_limit=1))
    source_model: ClassVar[type[SourceRecord]] = JianyiSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        problems = [] if config.credentials.get("api_key") else [
            f"{config.key}: credentials.api_key is required"]
        size = config.options.get("page_size", 20)
        if not (isinstance(size, int) and 1 <= size <= 100):
            problems.append(f"{config.key}: options.page_size must be an integer 1–100")
        if problems:
            raise ConfigError(problems)  # every problem at once
        self.page_size = size

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        client.auth = ApiKey(self.config.credentials["api_key"], name="X-Api-Key")
        return client

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        state = json.loads(cursor) if cursor else {"since": "", "page": 1, "seen": []}
        while True:
            params = {"since": state["since"], "page": state["page"], "size": self.page_size}
            rows = (await send(self.client, "GET", "/suggestions", params=params)).json()["data"]
            records, rejected = [], []
            for row in rows:
                if row.get("updated") == state["since"] and row.get("id") in state["seen"]:
                    continue  # the channel's `since` is inclusive: delivered by the previous pass
                try:
                    records.append(self._record(row))
                except (KeyError, ValueError) as exc:
                    rejected.append(BadRecord(row.get("id"), f"unreadable: {exc}", row))
            state["page"] += 1
            state["last"] = rows[-1]["updated"] if rows else state.get("last", state["since"])
            if len(rows) < self.page_size:  # the pass is over: next time, from the last update on
                last = state["last"]
                seen = [r["id"] for r in rows if r["updated"] == last]
                state = {"since": last, "page": 1, "seen": seen if last != state["since"] else
                         [*state["seen"], *seen]}
            yield ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=json.dumps(state))
            if state["page"] == 1:
                return

    def _record(self, row: Mapping[str, Any]) -> CaseRecord:
        return CaseRecord(
            channel=self.config.key, source_id=row["id"], title=row["title"], content=row["text"],
            status=STATES[row["state"]], source_status=row["state"], place=Place(street=row["street"]),
            parties=(Party(role="建议人", name=row["author"]["name"], phone=row["author"]["phone"]),),
            received_at=datetime.fromisoformat(row["created"]),
            updated_at=datetime.fromisoformat(row["updated"]))

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        found: dict[str, SourceRecord | None] = dict.fromkeys(source_ids)
        for source_id in found:
            response = await send(self.client, "GET", f"/suggestions/{source_id}", skip_missing=True)
            if response.status_code == 200:
                row = response.json()["data"]
                found[source_id] = JianyiSource(source_id=row["id"], title=row["title"], state=row["state"])
        return found

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        body = {"requestId": action.action_id, "text": action.message, "by": action.actor}
        url = f"/suggestions/{action.source_id}/replies"
        answer = (await send(self.client, "POST", url, json=body)).json()
        return WriteBackResult(action_id=action.action_id, accepted=True, duplicate=answer["duplicate"],
                               source_status=answer["state"])

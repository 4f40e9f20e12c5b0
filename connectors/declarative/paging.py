"""How the declarative connector walks a channel's list endpoint: by its cursor, by page numbers,
or by time windows — each pass from the cursor's mark (less the lookback) to now.

The state of a pass under way lives in :attr:`Cursor.position`, so a resume continues the pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from connectors.declarative.cursor import Cursor
from connectors.declarative.mapping import dig, format_time
from connectors.declarative.spec import ListSpec
from connectors.errors import UpstreamRejected

__all__ = ["Pager"]

Fetch = Callable[..., Awaitable[Any]]
MAX_PAGES = 100_000  # a channel that never stops paging is a broken channel, not an endless one


class Pager:
    """One pass over the list endpoint.

    Args:
        spec: the spec's ``list`` section.
        fetch: ``await fetch(method, path, params=…)`` → the decoded answer.
        since: updates before this were delivered already (``None``: the first pass).
        now: when the pass started (the end of the last window).
    """

    def __init__(self, spec: ListSpec, fetch: Fetch, since: datetime | None, now: datetime) -> None:
        self.spec, self.fetch, self.since, self.now = spec, fetch, since, now

    async def pages(self, cursor: Cursor) -> AsyncIterator[tuple[list[Any], bool]]:
        """Yield each page's raw records and whether the pass is complete after it."""
        state = dict(cursor.position) if isinstance(cursor.position, dict) else self._start()
        for _ in range(MAX_PAGES):
            params = {**self.spec.params, **self._params(state)}
            answer = await self.fetch("GET", self.spec.path, params=params)
            records = dig(answer, self.spec.records)
            if not isinstance(records, list):
                raise UpstreamRejected(f"GET {self.spec.path}: answer has no record list at "
                                       f"{self.spec.records!r}")
            more = self._advance(state, answer, records)
            cursor.position = state if more else None
            yield records, not more
            if not more:
                return
        raise UpstreamRejected(f"GET {self.spec.path}: more than {MAX_PAGES} pages in one pass")

    def _start(self) -> dict[str, Any]:
        paging = self.spec.paging
        since = None if self.since is None else self.since.isoformat()
        if paging.type == "window":
            first = self.since or _earliest(paging.earliest, self.now)
            return {"start": first.isoformat(), "page": paging.first_page, "until": self.now.isoformat()}
        return {"since": since, "page": paging.first_page, "next": None}

    def _params(self, state: dict[str, Any]) -> dict[str, str]:
        paging, params = self.spec.paging, {}
        if paging.size_param and paging.type != "none":
            params[paging.size_param] = str(paging.size)
        if paging.type == "window":
            start = datetime.fromisoformat(state["start"])
            end = min(start + timedelta(days=paging.window_days), datetime.fromisoformat(state["until"]))
            params[paging.start_param] = format_time(start, paging.window_format, self._tz())
            params[paging.end_param] = format_time(end, paging.window_format, self._tz())
            if paging.size_param:
                params[paging.page_param] = str(state["page"])
            return params
        since = self.spec.since
        if since is not None and state.get("since"):
            params[since.param] = format_time(datetime.fromisoformat(state["since"]), since.format, since.tz)
        if paging.type == "page":
            params[paging.page_param] = str(state["page"])
        if paging.type == "cursor" and state.get("next"):
            params[paging.cursor_param] = str(state["next"])
        return params

    def _advance(self, state: dict[str, Any], answer: Any, records: list[Any]) -> bool:
        """Move ``state`` to the next page; whether there is one."""
        paging = self.spec.paging
        if paging.type == "cursor":
            token = dig(answer, paging.next_cursor)
            state["next"] = None if token in (None, "") else str(token)
            return bool(state["next"]) and bool(records)
        full = bool(records) and len(records) >= paging.size
        if paging.type == "page":
            state["page"] += 1
            return full
        if paging.type == "window":
            if paging.size_param and full:
                state["page"] += 1
                return True
            start = datetime.fromisoformat(state["start"]) + timedelta(days=paging.window_days)
            state["start"], state["page"] = start.isoformat(), paging.first_page
            return start < datetime.fromisoformat(state["until"])
        return False

    def _tz(self) -> str:
        return self.spec.since.tz if self.spec.since else "Asia/Shanghai"


def _earliest(value: str | None, now: datetime) -> datetime:
    if value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return now - timedelta(days=365)

"""The 12345 hotline's work orders (工单): the world's tickets in the vendor's own shape, plus their
mutable state (status, 退单 flag, action log) and the keyset paging the list endpoint serves.

Field names are the vendor's pinyin abbreviations: gdbh 工单编号, bt 标题, nr 内容, ldrxm 来电人姓名,
ldhm 来电号码, sfzh 身份证号, jd 街道, sq 社区, dz 地址, jd_wd 经度,纬度, lb 诉求类别, zt 状态,
tdbz 退单标志, slsj 受理时间, gxsj 更新时间, czjl 操作记录. Times are Beijing-time strings.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# zt: 1 待受理, 2 办理中, 3 已办结, 4 已关闭/已回访 (a rejected appeal is closed without handling)
ZT_BY_STAGE = {"new": "1", "accepted": "2", "processing": "2", "done": "3", "closed": "4", "rejected": "4"}
ZT_NAMES = {"1": "待受理", "2": "办理中", "3": "已办结", "4": "已关闭"}

# action type → (allowed from these zt, zt afterwards; None keeps it)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "qianshou": (frozenset({"1", "2"}), "2"),   # 签收: a department takes the order
    "huifu": (frozenset({"1", "2", "3"}), None),  # 回复: a progress note to the caller
    "banjie": (frozenset({"1", "2"}), "3"),     # 办结
    "tuidan": (frozenset({"1", "2"}), "1"),     # 退单: back to the dispatch pool, flagged
}


def beijing(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time."""
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    """The inverse of :func:`beijing`; raises ``ValueError``."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(slots=True)
class OrderState:
    """What the hotline system keeps per work order besides the ticket itself."""

    zt: str
    updated: datetime          # effective gxsj, whole seconds, UTC
    returned: bool = False     # tdbz
    actions: list[dict[str, str]] = field(default_factory=list)
    czids: dict[str, dict[str, str]] = field(default_factory=dict)  # czid → the action it recorded


class ActionError(Exception):
    """A write-back the hotline refuses: ``code`` is its error code, ``status`` the HTTP status."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        self.status, self.code, self.msg = status, code, msg
        super().__init__(msg)


class WorkOrderBook:
    """Work orders as the hotline serves them; arrivals are stamped when the system first sees them."""

    def __init__(self, sandbox: ChannelSandbox) -> None:
        self.sandbox = sandbox
        self.states: dict[str, OrderState] = {}
        self.latest = datetime(1970, 1, 1, tzinfo=UTC)
        self.changed: dict[str, None] = {}   # gdbh changed since the pusher last looked (ordered set)
        self.track_changes = False

    def _stamp(self) -> datetime:
        # The system's clock never runs behind its own data: an arrival is never older than what
        # a client may already have paged past.
        self.latest = max(_second(datetime.now(UTC)), self.latest)
        return self.latest

    def notice(self) -> list[str]:
        """Register newly visible tickets; returns their ids."""
        arrived: list[str] = []
        for ticket in self.sandbox.visible():
            if ticket.source_id in self.states:
                continue
            updated = _second(ticket.updated_at)
            if ticket.arrives_after > 0:
                updated = max(updated, self._stamp())
            self.latest = max(self.latest, updated)
            self.states[ticket.source_id] = OrderState(zt=ZT_BY_STAGE.get(ticket.stage, "1"), updated=updated)
            arrived.append(ticket.source_id)
            self._mark(ticket.source_id)
        return arrived

    def _mark(self, gdbh: str) -> None:
        if self.track_changes:
            self.changed[gdbh] = None

    def ordered(self) -> Iterator[tuple[Ticket, OrderState]]:
        """Visible work orders by (gxsj, gdbh)."""
        self.notice()
        pairs = [(t, self.states[t.source_id]) for t in self.sandbox.visible()]
        pairs.sort(key=lambda pair: (pair[1].updated, pair[0].source_id))
        yield from pairs

    def find(self, gdbh: str) -> tuple[Ticket, OrderState] | None:
        self.notice()
        ticket = self.sandbox.get(gdbh)
        return None if ticket is None else (ticket, self.states[gdbh])

    def page(self, after: datetime | None, key: tuple[datetime, str] | None, limit: int
             ) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
        """Orders with gxsj > ``after`` and (gxsj, gdbh) > ``key``; and the key to continue from."""
        out: list[tuple[Ticket, OrderState]] = []
        more = False
        for ticket, state in self.ordered():
            if after is not None and state.updated <= after:
                continue
            if key is not None and (state.updated, ticket.source_id) <= key:
                continue
            if len(out) == limit:
                more = True
                break
            out.append((ticket, state))
        next_key = (out[-1][1].updated, out[-1][0].source_id) if more and out else None
        return [render(t, s) for t, s in out], next_key

    def act(self, gdbh: str, kind: str, czid: str, fields: dict[str, str]) -> tuple[bool, dict[str, Any]]:
        """Apply an action once per czid; returns (duplicate, the work order after it)."""
        found = self.find(gdbh)
        if found is None:
            raise ActionError(404, "NOT_FOUND", f"工单{gdbh}不存在")
        ticket, state = found
        if czid in state.czids:
            self.sandbox.record_write(gdbh, czid, duplicate=True)
            return True, render(ticket, state, detail=True)
        allowed, after = ACTIONS[kind]
        if state.zt not in allowed:
            raise ActionError(409, "INVALID_STATE", f"工单当前状态（{ZT_NAMES[state.zt]}）不允许该操作")
        now = self._stamp()
        entry = {"czid": czid, "lx": kind, "czsj": beijing(now), **fields}
        state.actions.append(entry)
        state.czids[czid] = entry
        if after is not None:
            state.zt = after
        state.returned = kind == "tuidan" or (state.returned and kind == "huifu")
        state.updated = now
        self._mark(gdbh)
        self.sandbox.record_write(gdbh, czid, duplicate=False)
        return False, render(ticket, state, detail=True)


def _keeps_id_private(ticket: Ticket) -> bool:
    # Many callers do not give their ID number on the phone; deterministic per order.
    return zlib.crc32(ticket.source_id.encode()) % 4 == 0


def render(ticket: Ticket, state: OrderState, *, detail: bool = False) -> dict[str, Any]:
    """A work order as the hotline's API shows it (``detail`` adds the action log)."""
    located = ticket.lat is not None and ticket.lng is not None
    order: dict[str, Any] = {
        "gdbh": ticket.source_id,
        "bt": ticket.title,
        "nr": ticket.content,
        "ldrxm": ticket.resident.name,
        "ldhm": ticket.resident.phone,
        "sfzh": "" if _keeps_id_private(ticket) else ticket.resident.id_number,
        "jd": ticket.street or "",
        "sq": ticket.community or "",
        "dz": ticket.address or "",
        "jd_wd": f"{ticket.lng:.6f},{ticket.lat:.6f}" if located else "",
        "lb": ticket.category_path[-1] if ticket.category_path else "",
        "zt": state.zt,
        "tdbz": "1" if state.returned else "0",
        "slsj": beijing(ticket.received_at),
        "gxsj": beijing(state.updated),
    }
    if detail:
        order["czjl"] = [dict(entry) for entry in state.actions]
    return order

"""The district-head hotline's letters (来信): the world's tickets with Chinese keys, epoch-millisecond
times, status words, and the per-letter state write-back changes.

The system stores text as GB18030 but its web layer declares GBK — a common legacy mismatch: a
character outside GBK (a rare name character such as 𠮷, or a foreign letter such as ñ) leaves the
system as GB18030 four-byte sequences, which a GBK decoder cannot read.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.kit import ChannelSandbox
from sandbox.world import Ticket

STATUS_BY_STAGE = {"new": "待签收", "accepted": "办理中", "processing": "办理中", "done": "已办结",
                   "closed": "已答复", "rejected": "不予受理"}
RETURNED = "已退回"

# 操作 → (allowed from these 办理状态, 办理状态 afterwards; None keeps it)
OPERATIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "签收": (frozenset({"待签收", "办理中", RETURNED}), "办理中"),  # a department signs what it was sent
    "回复": (frozenset({"待签收", "办理中", "已办结", RETURNED}), None),
    "办结": (frozenset({"待签收", "办理中"}), "已办结"),
    "退回": (frozenset({"待签收", "办理中"}), RETURNED),
}
WAYS = ("网站", "微信", "信件", "APP")


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def now_ms() -> int:
    return epoch_ms(datetime.now(UTC))


def encode_gbk(text: str) -> bytes:
    """GBK, with characters outside it written as GB18030 (see the module docstring)."""
    try:
        return text.encode("gbk")
    except UnicodeEncodeError:
        return b"".join(_encode_char(ch) for ch in text)


def _encode_char(ch: str) -> bytes:
    try:
        return ch.encode("gbk")
    except UnicodeEncodeError:
        return ch.encode("gb18030")


@dataclass(slots=True)
class LetterState:
    status: str
    updated_ms: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    serials: dict[str, dict[str, Any]] = field(default_factory=dict)  # 操作流水号 → its step


class LetterError(Exception):
    """An operation the system refuses: ``code`` is its 返回码."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class LetterBook:
    """Letters as the system serves them; arrivals are stamped (distinct milliseconds) when first seen."""

    def __init__(self, sandbox: ChannelSandbox) -> None:
        self.sandbox = sandbox
        self.states: dict[str, LetterState] = {}
        self.latest = 0

    def _stamp(self) -> int:
        # Never behind the system's own data, and one millisecond per change.
        self.latest = max(now_ms(), self.latest + 1)
        return self.latest

    def notice(self) -> None:
        for ticket in self.sandbox.visible():
            if ticket.source_id in self.states:
                continue
            updated = epoch_ms(ticket.updated_at)
            if ticket.arrives_after > 0:
                updated = max(updated, self._stamp())
            self.latest = max(self.latest, updated)
            self.states[ticket.source_id] = LetterState(STATUS_BY_STAGE.get(ticket.stage, "待签收"), updated)

    def page(self, since_ms: int, page: int, rows: int) -> tuple[int, list[dict[str, Any]]]:
        """Letters with 更新时间 ≥ ``since_ms`` by (更新时间, 编号): the total and page ``page``."""
        self.notice()
        matching = [(self.states[t.source_id], t) for t in self.sandbox.visible()
                    if self.states[t.source_id].updated_ms >= since_ms]
        matching.sort(key=lambda pair: (pair[0].updated_ms, pair[1].source_id))
        start = (page - 1) * rows
        return len(matching), [render(t, s) for s, t in matching[start:start + rows]]

    def detail(self, ids: list[str]) -> list[dict[str, Any]]:
        self.notice()
        out = []
        for letter_id in dict.fromkeys(ids):
            ticket = self.sandbox.get(letter_id)
            if ticket is not None:
                out.append(render(ticket, self.states[letter_id], detail=True))
        return out

    def operate(self, letter_id: str, operation: str, serial: str, content: str, operator: str
                ) -> tuple[bool, str]:
        """Apply an operation once per 操作流水号; returns (duplicate, 办理状态 afterwards)."""
        self.notice()
        ticket = self.sandbox.get(letter_id)
        if ticket is None:
            raise LetterError("2001", "信件不存在")
        state = self.states[letter_id]
        if serial in state.serials:
            self.sandbox.record_write(letter_id, serial, duplicate=True)
            return True, state.status
        allowed, after = OPERATIONS[operation]
        if state.status not in allowed:
            raise LetterError("2002", f"当前状态（{state.status}）不允许{operation}")
        stamp = self._stamp()
        step = {"操作流水号": serial, "操作": operation, "内容": content, "操作人": operator,
                "操作时间": stamp}
        state.steps.append(step)
        state.serials[serial] = step
        if after is not None:
            state.status = after
        state.updated_ms = stamp
        self.sandbox.record_write(letter_id, serial, duplicate=False)
        return False, state.status


def render(ticket: Ticket, state: LetterState, *, detail: bool = False) -> dict[str, Any]:
    """A letter as the system's API shows it (``detail`` adds 办理记录)."""
    letter: dict[str, Any] = {
        "编号": ticket.source_id,
        "标题": ticket.title,
        "内容": ticket.content,
        "来信人": ticket.resident.name,
        "联系电话": ticket.resident.phone,
        "身份证号": ticket.resident.id_number,
        "所属街道": ticket.street or "",
        "所属社区": ticket.community or "",
        "详细地址": ticket.address or "",
        "问题类别": ticket.category_path[-1] if ticket.category_path else "",
        "来信方式": WAYS[zlib.crc32(ticket.source_id.encode()) % len(WAYS)],
        "办理状态": state.status,
        "提交时间": epoch_ms(ticket.received_at),
        "更新时间": state.updated_ms,
    }
    if detail:
        letter["办理记录"] = [dict(step) for step in state.steps]
    return letter

"""The petition system's records (信访件): the world's tickets as the 信访 system holds them, rendered as
``<xf:item>`` elements with Chinese element names, and the per-petition state that feedback changes.

办理状态 by the world's generic stage: new 待受理, accepted 已受理, processing 办理中, done 已答复, closed
已办结, rejected 不予受理; the feedback action 退回 makes a petition 已退回 (back with the petition bureau
for re-assignment). Times are Beijing time ``yyyyMMddHHmmss``, to the second. Records migrated from the
old system without a time (a naive ``datetime`` on a hand-made ticket) show the old system's zero date
``00000000000000``, as such migrated rows really do.

Feedback actions (SubmitFeedback) and the states they are allowed in:

=====  ==============================  ===========================================================
action allowed in                       afterwards
=====  ==============================  ===========================================================
受理    待受理, 已退回                    已受理
转办    待受理, 已受理                    办理中 (forwarded to the handling unit)
答复    已受理, 办理中, 已答复             已受理 → 办理中; otherwise unchanged (a reply to the
                                        petitioner is not a state; 已答复 is set by petition-bureau
                                        staff in their own client when the 答复意见书 is served)
办结    已受理, 办理中, 已答复             已办结
退回    待受理, 已受理, 办理中             已退回
=====  ==============================  ===========================================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from sandbox.kit import ChannelSandbox
from sandbox.petition.soap import SoapFault, sub, xf
from sandbox.world import Ticket

__all__ = ["ACTIONS", "BEIJING", "STATUS_BY_STAGE", "PetitionBook", "beijing", "parse_beijing"]

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y%m%d%H%M%S"
ZERO_DATE = "00000000000000"
ACCEPT_DAYS, HANDLE_DAYS = 15, 60  # 信访工作条例: decide on acceptance in 15 days, handle in 60
STATUS_BY_STAGE = {"new": "待受理", "accepted": "已受理", "processing": "办理中", "done": "已答复",
                   "closed": "已办结", "rejected": "不予受理"}
RETURNED = "已退回"
# action → (states it is allowed in, state afterwards; None: see the module docstring)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "受理": (frozenset({"待受理", RETURNED}), "已受理"),
    "转办": (frozenset({"待受理", "已受理"}), "办理中"),
    "答复": (frozenset({"已受理", "办理中", "已答复"}), None),
    "办结": (frozenset({"已受理", "办理中", "已答复"}), "已办结"),
    "退回": (frozenset({"待受理", "已受理", "办理中"}), RETURNED),
}
_UNITS = {"城市管理": "光明区城市管理和综合执法局", "生态环境": "深圳市生态环境局光明管理局",
          "交通运输": "光明区交通运输局", "住房建设": "光明区住房和建设局",
          "市场监管": "深圳市市场监督管理局光明监管局", "公共安全": "光明区应急管理局",
          "劳动纠纷": "光明区人力资源局", "社会救助": "光明区民政局", "困难帮扶": "光明区残疾人联合会"}


def beijing(moment: datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time; the zero date for a time the old system never had."""
    if moment.tzinfo is None:
        return ZERO_DATE
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    """``yyyyMMddHHmmss`` Beijing time → aware UTC; raises ``ValueError``."""
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"not yyyyMMddHHmmss: {text!r}")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def _sortable(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(slots=True)
class PetitionState:
    status: str
    updated: datetime
    unit: str | None
    log: list[dict[str, str]] = field(default_factory=list)


def _initial(ticket: Ticket) -> PetitionState:
    unit = None
    if ticket.stage not in ("new", "rejected") and len(ticket.category_path) > 1:
        unit = _UNITS.get(ticket.category_path[1], f"{ticket.street or '光明区'}信访办")
    updated = ticket.updated_at.replace(microsecond=0)
    return PetitionState(STATUS_BY_STAGE.get(ticket.stage, ticket.stage), updated, unit)


class PetitionBook:
    """Petitions as the system serves them; a petition's state is made when it is first seen (a ticket
    that arrives while the sandbox runs is stamped with the moment it is first seen)."""

    def __init__(self, sandbox: ChannelSandbox) -> None:
        self.sandbox = sandbox
        self.states: dict[str, PetitionState] = {}
        self.serials: dict[str, tuple[str, str]] = {}  # 流水号 → (信访件编号, 办理状态 after it)

    def notice(self) -> None:
        for ticket in self.sandbox.visible():
            if ticket.source_id not in self.states:
                state = _initial(ticket)
                if ticket.arrives_after > 0:
                    state.updated = _now()
                self.states[ticket.source_id] = state

    def query(self, start: datetime, end: datetime, page_no: int, size: int) -> tuple[int, list[Element]]:
        """Petitions with start ≤ 更新时间 ≤ end by (更新时间, 编号): the total and one page."""
        self.notice()
        matching = [(self.states[t.source_id], t) for t in self.sandbox.visible()
                    if start <= _sortable(self.states[t.source_id].updated) <= end]
        matching.sort(key=lambda pair: (_sortable(pair[0].updated), pair[1].source_id))
        first = (page_no - 1) * size
        return len(matching), [render(t, s) for s, t in matching[first:first + size]]

    def get(self, ids: list[str]) -> tuple[list[Element], list[str]]:
        """The petitions found (with their 办理记录) and the ids not found."""
        self.notice()
        found, missing = [], []
        for petition_no in dict.fromkeys(ids):
            ticket = self.sandbox.get(petition_no)
            if ticket is None:
                missing.append(petition_no)
            else:
                found.append(render(ticket, self.states[petition_no], detail=True))
        return found, missing

    def feedback(self, petition_no: str, serial: str, action: str, entry: dict[str, str]) -> tuple[bool, str]:
        """Apply feedback once per 流水号; returns (duplicate, 办理状态 afterwards).

        Raises:
            SoapFault: ``soap:Client`` for an unknown petition, a 流水号 used for another petition, or an
                action the petition's state does not allow.
        """
        self.notice()
        if serial in self.serials:
            earlier_no, status = self.serials[serial]
            if earlier_no != petition_no:
                raise SoapFault("soap:Client", f"流水号{serial}已用于信访件{earlier_no}")
            self.sandbox.record_write(petition_no, serial, duplicate=True)
            return True, status
        if self.sandbox.get(petition_no) is None:
            raise SoapFault("soap:Client", f"信访件不存在：{petition_no}")
        state = self.states[petition_no]
        allowed, after = ACTIONS[action]
        if state.status not in allowed:
            raise SoapFault("soap:Client", f"当前办理状态（{state.status}）不允许{action}")
        if action == "答复" and state.status == "已受理":
            after = "办理中"
        stamp = max(_now(), _sortable(state.updated))
        state.log.append({**entry, "流水号": serial, "操作": action, "操作时间": beijing(stamp)})
        if entry.get("承办单位") and action in ("受理", "转办"):
            state.unit = entry["承办单位"]
        state.status = after or state.status
        state.updated = stamp
        self.serials[serial] = (petition_no, state.status)
        self.sandbox.record_write(petition_no, serial, duplicate=False)
        return False, state.status


def _petitioners(parent: Element, ticket: Ticket, group: bool) -> None:
    people = sub(parent, "信访人列表")
    person = sub(people, "信访人")
    sub(person, "姓名", ticket.resident.name)
    sub(person, "身份证号", ticket.resident.id_number)
    sub(person, "联系电话", ticket.resident.phone)
    sub(person, "角色", "代表" if group else "信访人")


def _place(parent: Element, ticket: Ticket) -> None:
    place = sub(parent, "问题属地")
    for name, value in (("街道", ticket.street), ("社区", ticket.community), ("地址", ticket.address)):
        if value:
            sub(place, name, value)


def _log(parent: Element, entries: list[dict[str, str]]) -> None:
    log = sub(parent, "办理记录")
    for entry in entries:
        record = sub(log, "记录")
        for name in ("流水号", "操作", "内容", "操作人", "承办单位", "操作时间"):
            sub(record, name, entry.get(name, ""))


def render(ticket: Ticket, state: PetitionState, *, detail: bool = False) -> Element:
    """A petition as ``<xf:item>`` (``detail`` adds its 办理记录)."""
    item = ET.Element(xf("item"))
    count = int(str(ticket.extra.get("head_count") or 1))
    sub(item, "信访件编号", ticket.source_id)
    sub(item, "信访形式", str(ticket.extra.get("form") or "网上"))
    sub(item, "标题", ticket.title)
    sub(item, "主要诉求", ticket.content)
    sub(item, "问题类别", ticket.category_path[-1] if ticket.category_path else "其他")
    sub(item, "是否集体访", "是" if count > 1 else "否")
    sub(item, "人数", str(count))
    _petitioners(item, ticket, count > 1)
    if ticket.other_party is not None:
        respondent = sub(item, "被反映人")
        sub(respondent, "名称", ticket.other_party.name)
        sub(respondent, "类型", "单位" if ticket.other_party.resident_id.startswith("O-") else "个人")
    _place(item, ticket)
    sub(item, "办理状态", state.status)
    if state.unit:
        sub(item, "承办单位", state.unit)
    sub(item, "登记时间", beijing(ticket.received_at))
    sub(item, "更新时间", beijing(state.updated))
    if ticket.received_at.tzinfo is not None:
        sub(item, "受理期限", beijing(ticket.received_at + timedelta(days=ACCEPT_DAYS)))
        sub(item, "办理期限", beijing(ticket.received_at + timedelta(days=HANDLE_DAYS)))
    if detail:
        _log(item, state.log)
    return item

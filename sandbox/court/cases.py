"""The court's pre-litigation mediation cases (诉前调解案件): the world's tickets as the platform holds
them — case numbers, parties with roles, mediation states, UTC ISO-8601 times — and the per-case state
that feedback changes.

Mediation states by the world's generic stage: new 待分配, accepted 已分配, processing 调解中, done
调解成功, closed 调解失败 (or 已撤回 for about a third), rejected 不予受理; feedback of type RETURN makes a
case 已退回. A stage the platform does not know is shown as it is (data migrated from the old system
carries such words).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.kit import ChannelSandbox
from sandbox.world import Resident, Ticket

__all__ = ["COURT", "FEEDBACK_TYPES", "CaseBook", "FeedbackError", "iso_z", "parse_iso"]

COURT = "深圳市光明区人民法院"
MEDIATION_DAYS = 30  # 诉前调解 must end within 30 days of the court's referral
STATE_BY_STAGE = {"new": "待分配", "accepted": "已分配", "processing": "调解中", "done": "调解成功",
                  "closed": "调解失败", "rejected": "不予受理"}
WITHDRAWN, RETURNED = "已撤回", "已退回"
OPEN_STATES = frozenset({"待分配", "已分配", "调解中"})
# feedback type → (states it is allowed in, state afterwards; None keeps it)
FEEDBACK_TYPES: dict[str, tuple[frozenset[str], str | None]] = {
    "ACCEPT": (frozenset({"待分配", "已分配"}), "已分配"),
    "PROGRESS": (OPEN_STATES | {"调解成功", "调解失败"}, None),
    "CLOSE": (OPEN_STATES, "调解成功"),
    "RETURN": (OPEN_STATES, RETURNED),
}
MEDIATORS = (("李秀英", "光明区人民调解委员会"), ("黄国强", "光明区劳动争议调解委员会"),
             ("陈美玲", "光明区物业纠纷调解委员会"), ("张志华", "光明区诉前调解中心"),
             ("刘德明", "光明区道路交通事故纠纷调解委员会"))


def iso_z(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``; a naive time (old imported data) is shown without zone."""
    if moment.tzinfo is None:
        return moment.isoformat(timespec="milliseconds")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """An ISO-8601 time with a zone (``Z`` or an offset) → aware UTC; raises ``ValueError``."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("time zone required")
    return moment.astimezone(UTC)


def _ms(moment: datetime) -> datetime:
    """Truncated to whole milliseconds: the platform keeps no finer time than it shows."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _pick(source_id: str, salt: str, count: int) -> int:
    return zlib.crc32(f"{salt}:{source_id}".encode()) % count


@dataclass(slots=True)
class CaseState:
    state: str
    updated: datetime
    mediator: tuple[str, str] | None
    feedbacks: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # requestId → its feedback


class FeedbackError(Exception):
    """Feedback the platform refuses: HTTP ``status`` with ``errcode``."""

    def __init__(self, status: int, errcode: int, errmsg: str) -> None:
        self.status, self.errcode, self.errmsg = status, errcode, errmsg
        super().__init__(errmsg)


class CaseBook:
    """Cases as the platform serves them; a case's state is made when it is first seen."""

    def __init__(self, sandbox: ChannelSandbox) -> None:
        self.sandbox = sandbox
        self.states: dict[str, CaseState] = {}
        self.latest = datetime(2000, 1, 1, tzinfo=UTC)

    def _stamp(self) -> datetime:
        # never behind the platform's own data, and one millisecond per change
        self.latest = max(_ms(datetime.now(UTC)), self.latest + timedelta(milliseconds=1))
        return self.latest

    def notice(self) -> None:
        for ticket in self.sandbox.visible():
            if ticket.source_id in self.states:
                continue
            updated = self._stamp() if ticket.arrives_after > 0 else _ms(ticket.updated_at)
            self.latest = max(self.latest, updated)
            self.states[ticket.source_id] = CaseState(_initial_state(ticket), updated, _mediator(ticket))

    def page(self, since: datetime | None, offset: int, limit: int, street: str | None
             ) -> tuple[int, list[dict[str, Any]]]:
        """Cases with updatedAt ≥ ``since`` (and in ``street``) by (updatedAt, caseNo): total and one page."""
        self.notice()
        matching = [(self.states[t.source_id], t) for t in self.sandbox.visible()
                    if (since is None or self.states[t.source_id].updated >= since)
                    and (street is None or t.street == street)]
        matching.sort(key=lambda pair: (pair[0].updated, pair[1].source_id))
        return len(matching), [render(t, s) for s, t in matching[offset:offset + limit]]

    def detail(self, case_nos: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """The cases found (with their feedback) and the case numbers not found."""
        self.notice()
        found, missing = [], []
        for case_no in dict.fromkeys(case_nos):
            ticket = self.sandbox.get(case_no)
            if ticket is None:
                missing.append(case_no)
            else:
                found.append(render(ticket, self.states[case_no], detail=True))
        return found, missing

    def feedback(self, case_no: str, request_id: str, kind: str, fields: dict[str, str]
                 ) -> tuple[bool, str]:
        """Apply feedback once per ``request_id``; returns (duplicate, state afterwards)."""
        self.notice()
        if self.sandbox.get(case_no) is None:
            raise FeedbackError(404, 40401, "案件不存在")
        state = self.states[case_no]
        if request_id in state.requests:
            return True, state.state
        allowed, after = FEEDBACK_TYPES[kind]
        if state.state not in allowed:
            raise FeedbackError(409, 40901, f"当前调解状态（{state.state}）不允许{kind}")
        stamp = self._stamp()
        entry = {"requestId": request_id, "type": kind, "content": fields.get("content", ""),
                 "operator": fields.get("operator", ""), "department": fields.get("department", ""),
                 "createdAt": iso_z(stamp)}
        state.feedbacks.append(entry)
        state.requests[request_id] = entry
        if kind == "CLOSE" and fields.get("outcome") == "FAILURE":
            after = "调解失败"
        if kind == "PROGRESS" and state.state in ("待分配", "已分配"):
            after = "调解中"
        if kind == "ACCEPT" and state.mediator is None:
            state.mediator = (fields.get("operator") or "值班调解员",
                              fields.get("department") or "光明区诉前调解中心")
        if after is not None:
            state.state = after
        state.updated = stamp
        return False, state.state


def _initial_state(ticket: Ticket) -> str:
    state = STATE_BY_STAGE.get(ticket.stage, ticket.stage)
    if state == "调解失败" and _pick(ticket.source_id, "withdrawn", 3) == 0:
        return WITHDRAWN
    return state


def _mediator(ticket: Ticket) -> tuple[str, str] | None:
    if ticket.stage in ("new", "rejected"):
        return None
    return MEDIATORS[_pick(ticket.source_id, "mediator", len(MEDIATORS))]


def _party(role: str, person: Resident) -> dict[str, Any]:
    organisation = person.resident_id.startswith("O-")
    return {"role": role, "name": person.name, "phone": person.phone, "idNo": person.id_number,
            "type": "法人" if organisation else "自然人"}


def _amount(value: object) -> object:
    # the platform keeps 标的额 in yuan with two decimals; odd legacy values are passed through as they are
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 2)
    return value


def render(ticket: Ticket, state: CaseState, *, detail: bool = False) -> dict[str, Any]:
    """A case as the platform's API shows it (``detail`` adds its feedback log)."""
    parties = [_party("申请人", ticket.resident)]
    if ticket.other_party is not None:
        parties.append(_party("被申请人", ticket.other_party))
    mediator = None if state.mediator is None else {"name": state.mediator[0], "org": state.mediator[1]}
    case: dict[str, Any] = {
        "caseNo": ticket.source_id,
        "title": ticket.title,
        "cause": ticket.category_path[-1] if ticket.category_path else "",
        "legalCause": ticket.extra.get("cause"),
        "summary": ticket.content,
        "claimAmount": _amount(ticket.extra.get("claim_amount")),
        "parties": parties,
        "state": state.state,
        "mediator": mediator,
        "court": COURT,
        "street": ticket.street,
        "community": ticket.community,
        "address": ticket.address,
        "createdAt": iso_z(ticket.received_at),
        "updatedAt": iso_z(state.updated),
        "dueAt": iso_z(ticket.received_at + timedelta(days=MEDIATION_DAYS)),
    }
    if detail:
        case["feedbacks"] = [dict(entry) for entry in state.feedbacks]
    return case

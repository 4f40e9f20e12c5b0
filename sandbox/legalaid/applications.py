"""Legal-aid applications (法律援助申请): the world's tickets as the legal-aid system holds them, keyset
paging over (updatedAt, applicationNo), and the per-application state that feedback changes.

Status and review decision by the world's generic stage: new (RECEIVED, PENDING), accepted
(UNDER_REVIEW, PENDING), processing (LAWYER_ASSIGNED, GRANTED), done (CLOSED, GRANTED), closed
(CLOSED, GRANTED, or WITHDRAWN for about a third), rejected (CLOSED, DENIED). A stage the system does
not know is kept as it is, and the schema then cannot render that application's status (hand-made test
tickets use this to make a broken node).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.kit import ChannelSandbox
from sandbox.world import Resident, Ticket

__all__ = ["ApplicationBook", "CursorError", "FeedbackRefused", "decode_cursor", "encode_cursor"]

STATE_BY_STAGE = {"new": ("RECEIVED", "PENDING"), "accepted": ("UNDER_REVIEW", "PENDING"),
                  "processing": ("LAWYER_ASSIGNED", "GRANTED"), "done": ("CLOSED", "GRANTED"),
                  "closed": ("CLOSED", "GRANTED"), "rejected": ("CLOSED", "DENIED")}
LAWYERS = (("周明辉", "广东光明律师事务所", "14403201810123456"),
           ("吴丽娟", "广东华瑞律师事务所", "14403201610654321"),
           ("郑建国", "广东融关律师事务所", "14403201910234567"),
           ("孙晓燕", "北京市盈科（深圳）律师事务所", "14403202010345678"))


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _pick(source_id: str, salt: str, count: int) -> int:
    return zlib.crc32(f"{salt}:{source_id}".encode()) % count


class CursorError(ValueError):
    """An ``after`` cursor this system did not issue."""


def encode_cursor(updated: datetime, application_no: str) -> str:
    return base64.urlsafe_b64encode(f"v1|{updated.isoformat()}|{application_no}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        version, stamp, application_no = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 2)
        moment = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(f"invalid cursor {cursor[:40]!r}") from None
    if version != "v1" or moment.tzinfo is None:
        raise CursorError(f"invalid cursor {cursor[:40]!r}")
    return moment, application_no


@dataclass(slots=True)
class AppState:
    status: str
    decision: str
    updated: datetime
    lawyer: tuple[str, str, str] | None
    feedback: list[dict[str, Any]] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)


class FeedbackRefused(Exception):
    """Feedback the system does not take: ``code`` is a FeedbackErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class ApplicationBook:
    """Applications as the system serves them; an application's state is made when it is first seen."""

    def __init__(self, sandbox: ChannelSandbox) -> None:
        self.sandbox = sandbox
        self.states: dict[str, AppState] = {}
        self.latest = datetime(2000, 1, 1, tzinfo=UTC)

    def _stamp(self) -> datetime:
        self.latest = max(_ms(datetime.now(UTC)), self.latest + timedelta(milliseconds=1))
        return self.latest

    def notice(self) -> None:
        for ticket in self.sandbox.visible():
            if ticket.source_id in self.states:
                continue
            updated = self._stamp() if ticket.arrives_after > 0 else _ms(ticket.updated_at)
            self.latest = max(self.latest, updated)
            status, decision = _initial(ticket)
            lawyer = LAWYERS[_pick(ticket.source_id, "lawyer", len(LAWYERS))]
            self.states[ticket.source_id] = AppState(status, decision, updated,
                                                     lawyer if decision == "GRANTED" else None)

    def page(self, since: datetime | None, after: tuple[datetime, str] | None, first: int
             ) -> tuple[int, list[tuple[str, dict[str, Any]]], bool]:
        """(totalCount, [(cursor, application)], hasNextPage) by (updatedAt, applicationNo)."""
        self.notice()
        keyed = sorted(((self.states[t.source_id].updated, t.source_id), t) for t in self.sandbox.visible()
                       if since is None or self.states[t.source_id].updated >= since)
        rest = [(key, t) for key, t in keyed if after is None or key > after]
        shown = rest[:first]
        return len(keyed), [(encode_cursor(*key), render(t, self.states[t.source_id])) for key, t in shown], \
            len(rest) > first

    def by_no(self, nos: list[str]) -> list[dict[str, Any] | None]:
        self.notice()
        tickets = [self.sandbox.get(no) for no in nos]
        return [None if t is None else render(t, self.states[t.source_id]) for t in tickets]

    def feedback(self, fields: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Apply feedback once per requestId; returns (duplicate, the application afterwards)."""
        self.notice()
        no, request_id, kind = str(fields["applicationNo"]), str(fields["requestId"]), str(fields["kind"])
        ticket = self.sandbox.get(no)
        if ticket is None:
            raise FeedbackRefused("NOT_FOUND", f"申请编号{no}不存在")
        state = self.states[no]
        if request_id in state.requests:
            return True, render(ticket, state)
        _apply(state, kind)
        stamp = self._stamp()
        state.feedback.append({"requestId": request_id, "kind": kind, "message": str(fields["message"]),
                               "operator": str(fields["operator"]), "at": stamp})
        state.requests.add(request_id)
        state.updated = stamp
        return False, render(ticket, state)


def _apply(state: AppState, kind: str) -> None:
    closed = state.status == "CLOSED"
    if kind == "ACCEPT":
        if closed:
            raise FeedbackRefused("INVALID_STATE", "已结案的申请不能受理")
        state.status = "UNDER_REVIEW" if state.status == "RECEIVED" else state.status
    elif kind == "CLOSE":
        if closed:
            raise FeedbackRefused("INVALID_STATE", "申请已结案")
        state.status = "CLOSED"
        state.decision = "GRANTED" if state.decision == "PENDING" else state.decision
    elif kind == "RETURN":
        if state.status not in ("RECEIVED", "UNDER_REVIEW"):
            raise FeedbackRefused("INVALID_STATE", "已作出审查决定或已结案的申请不能退回")
        state.status = "CLOSED"


def _initial(ticket: Ticket) -> tuple[str, str]:
    status, decision = STATE_BY_STAGE.get(ticket.stage, (ticket.stage.upper(), "PENDING"))
    if ticket.stage == "closed" and _pick(ticket.source_id, "withdrawn", 3) == 0:
        decision = "WITHDRAWN"
    return status, decision


def _party(person: Resident | None) -> dict[str, Any] | None:
    if person is None:
        return None
    organisation = person.resident_id.startswith("O-")
    return {"name": person.name, "phone": person.phone, "isOrganisation": organisation,
            "idCard": None if organisation else person.id_number,
            "creditCode": person.id_number if organisation else None}


def render(ticket: Ticket, state: AppState) -> dict[str, Any]:
    """An application as the schema resolves it (times stay datetimes: the DateTime scalar writes them)."""
    service = ticket.extra.get("aid_type")
    lawyer = state.lawyer
    return {
        "applicationNo": ticket.source_id,
        "subject": ticket.title,
        "applicant": _party(ticket.resident),
        "applicantCategory": ticket.extra.get("applicant_type"),
        "opponent": _party(ticket.other_party),
        "aidType": ticket.extra.get("case_type", "民事"),
        "serviceType": service,
        "matterCategory": ticket.category_path[-1] if ticket.category_path else None,
        "matter": ticket.content,
        "street": ticket.street,
        "community": ticket.community,
        "address": ticket.address,
        "reviewDecision": state.decision,
        "status": state.status,
        "assignedLawyer": None if lawyer is None else {"name": lawyer[0], "firm": lawyer[1],
                                                       "licenseNo": lawyer[2]},
        "submittedAt": ticket.received_at,
        "updatedAt": state.updated,
        "feedback": [dict(entry) for entry in state.feedback],
    }

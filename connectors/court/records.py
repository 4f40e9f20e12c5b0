"""Mapping the court's mediation cases (诉前调解案件) into the case model and the live source record.

Cases use camelCase keys (caseNo, cause, summary, parties[{role, name, phone, idNo, type}], state …),
mediation state words and UTC ISO-8601 times with ``Z``.

Mediation state → unified status (why):

========  ===========  =====================================================================
state     unified      why
========  ===========  =====================================================================
待分配     SUBMITTED    referred by the court, nobody has taken it yet
已分配     ACCEPTED     a mediator took it; mediation has not started (the gateway's own
                       dispatch to departments is a separate step, so not DISPATCHED)
调解中     IN_PROGRESS  mediation under way
调解成功   RESOLVED     an agreement was reached: the dispute is resolved
调解失败   CLOSED       mediation ended without agreement; the court files the case — closed
                       for the gateway, ``extra["调解结果"] = "失败"`` tells it from a success
已撤回     CLOSED       the applicant withdrew (``调解结果`` 撤回)
已退回     RETURNED     handed back to the court as not the mediation side's (退单)
不予受理   REJECTED     not taken into mediation
========  ===========  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Place, UnifiedStatus
from connectors.records import Party as CaseParty

__all__ = ["OUTCOME", "STATUS", "CourtSource", "Feedback", "Party", "case_to_record", "case_to_source",
           "format_time", "parse_time"]

STATUS: dict[str, UnifiedStatus] = {
    "待分配": UnifiedStatus.SUBMITTED,
    "已分配": UnifiedStatus.ACCEPTED,
    "调解中": UnifiedStatus.IN_PROGRESS,
    "调解成功": UnifiedStatus.RESOLVED,
    "调解失败": UnifiedStatus.CLOSED,
    "已撤回": UnifiedStatus.CLOSED,
    "已退回": UnifiedStatus.RETURNED,
    "不予受理": UnifiedStatus.REJECTED,
}
OUTCOME = {"调解成功": "成功", "调解失败": "失败", "已撤回": "撤回", "已退回": "退回", "不予受理": "不予受理"}
CENTS = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 15  # beyond any civil claim; also keeps quantize within Decimal's precision
ORGANISATION_TYPES = frozenset({"法人", "非法人组织"})
PERSONAL: dict[str, JsonValue] = {"personal": True}  # marks fields holding personal data, for masking above


class Party(BaseModel):
    """A party to the mediation (当事人)."""

    model_config = ConfigDict(frozen=True)

    role: str = Field(description="诉讼地位: 申请人 or 被申请人")
    name: str | None = Field(default=None, description="姓名/名称", json_schema_extra=PERSONAL)
    phone: str | None = Field(default=None, description="联系电话", json_schema_extra=PERSONAL)
    id_no: str | None = Field(default=None, description="身份证号 (自然人) or 统一社会信用代码 (法人)",
                              json_schema_extra=PERSONAL)
    type: str | None = Field(default=None, description="当事人类型: 自然人, 法人")


class Feedback(BaseModel):
    """One entry of the case's feedback log (反馈记录)."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="requestId (the idempotency key of the write-back)")
    type: str = Field(description="ACCEPT, PROGRESS, CLOSE or RETURN")
    content: str = Field(default="", description="反馈内容")
    operator: str = Field(default="", description="操作人")
    department: str = Field(default="", description="操作部门")
    created_at: datetime | None = Field(default=None, description="反馈时间 in UTC")


class CourtSource(SourceRecord):
    """A pre-litigation mediation case (诉前调解案件) as the court's platform holds it now."""

    title: str = Field(default="", description="案件名称")
    cause: str | None = Field(default=None, description="案由 as the platform files it (leaf label)")
    legal_cause: str | None = Field(default=None, description="案由 per the civil cause catalogue")
    summary: str = Field(default="", description="纠纷简述")
    claim_amount: Decimal | None = Field(default=None, description="标的额, yuan")
    parties: list[Party] = Field(default_factory=list, description="当事人")
    state: str = Field(description="调解状态: 待分配, 已分配, 调解中, 调解成功, 调解失败, 已撤回, 已退回, "
                                   "不予受理")
    mediator: str | None = Field(default=None, description="调解员")
    mediator_org: str | None = Field(default=None, description="调解组织")
    court: str | None = Field(default=None, description="委派法院")
    street: str | None = Field(default=None, description="所属街道")
    community: str | None = Field(default=None, description="所属社区")
    address: str | None = Field(default=None, description="地址")
    created_at_text: str | None = Field(default=None, description="createdAt as sent (UTC ISO-8601)")
    updated_at_text: str | None = Field(default=None, description="updatedAt as sent (UTC ISO-8601)")
    created_at: datetime | None = Field(default=None, description="收案时间 in UTC")
    updated_at: datetime | None = Field(default=None, description="更新时间 in UTC")
    due_at: datetime | None = Field(default=None, description="调解期限 (30 days) in UTC")
    feedbacks: list[Feedback] = Field(default_factory=list, description="反馈记录")


def parse_time(value: object) -> datetime:
    """An ISO-8601 time with a zone → aware UTC; raises ``ValueError`` (a time without zone too)."""
    if not isinstance(value, str):
        raise ValueError(f"not a time string: {value!r}")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"no time zone in {value!r}")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """The platform's own spelling: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _amount(value: object) -> Decimal | None:
    """标的额: a number (or a numeric string); ``ValueError`` for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"claimAmount is not a number: {value!r}")
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"claimAmount is not a number: {value!r}") from None
    if not amount.is_finite() or not 0 <= amount < MAX_AMOUNT:
        raise ValueError(f"claimAmount is not a plausible amount: {value!r}")
    return amount.quantize(CENTS)  # yuan and fen, as the platform keeps it


def _identity(raw: object) -> tuple[Mapping[str, Any], str]:
    if not isinstance(raw, Mapping):
        raise BadRecord(None, "case is not a JSON object", raw)
    case_no = _text(raw, "caseNo")
    if case_no is None:
        raise BadRecord(None, "caseNo is missing", dict(raw))
    return raw, case_no


def _parties(value: object) -> list[Party]:
    if not isinstance(value, list):
        return []
    return [Party(role=_text(p, "role") or "当事人", name=_text(p, "name"), phone=_text(p, "phone"),
                  id_no=_text(p, "idNo"), type=_text(p, "type"))
            for p in value if isinstance(p, Mapping)]


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def _title(case: Mapping[str, Any], case_no: str) -> str:
    return _text(case, "title") or f"{_text(case, 'cause') or '调解案件'}（{case_no}）"


def case_to_record(raw: object, channel: str) -> CaseRecord:
    """Normalise one case; raises :class:`BadRecord` with the reason when it cannot be."""
    case, case_no = _identity(raw)
    state = _text(case, "state") or ""
    if state not in STATUS:
        raise BadRecord(case_no, f"unknown mediation state {state!r}", dict(case))
    try:
        created, updated = parse_time(case.get("createdAt")), parse_time(case.get("updatedAt"))
        amount = _amount(case.get("claimAmount"))
    except ValueError as exc:
        raise BadRecord(case_no, str(exc), dict(case)) from None
    try:
        return CaseRecord(
            channel=channel, source_id=case_no, title=_title(case, case_no),
            content=_text(case, "summary") or "", category_hint=_text(case, "cause"),
            place=Place(street=_text(case, "street"), community=_text(case, "community"),
                        address=_text(case, "address")),
            parties=tuple(CaseParty(role=p.role, name=p.name, phone=p.phone, id_number=p.id_no,
                                    is_organisation=p.type in ORGANISATION_TYPES)
                          for p in _parties(case.get("parties"))),
            status=STATUS[state], source_status=state, received_at=created, updated_at=updated,
            extra={"标的额": None if amount is None else float(amount), "法定案由": _text(case, "legalCause"),
                   "调解结果": OUTCOME.get(state), "委派法院": _text(case, "court")})
    except ValidationError as exc:
        raise BadRecord(case_no, _reason(exc), dict(case)) from None


def _maybe_time(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _feedbacks(value: object) -> list[Feedback]:
    if not isinstance(value, list):
        return []
    return [Feedback(request_id=_text(f, "requestId") or "", type=_text(f, "type") or "",
                     content=_text(f, "content") or "", operator=_text(f, "operator") or "",
                     department=_text(f, "department") or "", created_at=_maybe_time(f.get("createdAt")))
            for f in value if isinstance(f, Mapping)]


def case_to_source(raw: object) -> CourtSource:
    """The live record of one case (lenient: what cannot be read is left empty)."""
    case, case_no = _identity(raw)
    given = case.get("mediator")
    mediator: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    try:
        amount = _amount(case.get("claimAmount"))
    except ValueError:
        amount = None
    try:
        return CourtSource(
            source_id=case_no, title=_text(case, "title") or "", cause=_text(case, "cause"),
            legal_cause=_text(case, "legalCause"), summary=_text(case, "summary") or "", claim_amount=amount,
            parties=_parties(case.get("parties")), state=_text(case, "state") or "",
            mediator=_text(mediator, "name"), mediator_org=_text(mediator, "org"), court=_text(case, "court"),
            street=_text(case, "street"), community=_text(case, "community"), address=_text(case, "address"),
            created_at_text=_text(case, "createdAt"), updated_at_text=_text(case, "updatedAt"),
            created_at=_maybe_time(case.get("createdAt")), updated_at=_maybe_time(case.get("updatedAt")),
            due_at=_maybe_time(case.get("dueAt")), feedbacks=_feedbacks(case.get("feedbacks")))
    except ValidationError as exc:
        raise BadRecord(case_no, _reason(exc), dict(case)) from None

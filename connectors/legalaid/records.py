"""Mapping legal-aid applications (法律援助申请) into the case model and the live source record.

The unified status comes from the pair (status, reviewDecision); ``source_status`` keeps both words as
``STATUS/DECISION`` (e.g. ``CLOSED/WITHDRAWN``), since either alone does not say what happened:

================================  ===========  ==========================================================
status / reviewDecision           unified      why
================================  ===========  ==========================================================
any / DENIED                      REJECTED     不予援助
any / WITHDRAWN                   CLOSED       the applicant withdrew: over, without a result
RECEIVED / PENDING                SUBMITTED    registered, not yet reviewed
UNDER_REVIEW / PENDING            ACCEPTED     under review (the ≤7-day decision clock runs)
LAWYER_ASSIGNED / GRANTED         IN_PROGRESS  aid granted, a lawyer handles the matter
CLOSED / GRANTED                  RESOLVED     the aided matter is concluded (结案)
CLOSED / PENDING                  RETURNED     closed without a decision: handed back / transferred
================================  ===========  ==========================================================

Times arrive as ISO-8601 with an offset (the system answers +08:00) and become aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Place, UnifiedStatus
from connectors.records import Party as CaseParty

__all__ = ["Feedback", "LegalAidSource", "Party", "application_to_record", "application_to_source",
           "parse_time", "status_word", "unified_status"]

STATUSES = frozenset({"RECEIVED", "UNDER_REVIEW", "LAWYER_ASSIGNED", "CLOSED"})
DECISIONS = frozenset({"PENDING", "GRANTED", "DENIED", "WITHDRAWN"})
_OPEN = {"RECEIVED": UnifiedStatus.SUBMITTED, "UNDER_REVIEW": UnifiedStatus.ACCEPTED,
         "LAWYER_ASSIGNED": UnifiedStatus.IN_PROGRESS}
PERSONAL: dict[str, JsonValue] = {"personal": True}  # marks fields holding personal data, for masking above


class Party(BaseModel):
    """申请人 or 对方当事人."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(default=None, description="姓名/名称", json_schema_extra=PERSONAL)
    phone: str | None = Field(default=None, description="联系电话", json_schema_extra=PERSONAL)
    id_card: str | None = Field(default=None, description="居民身份证号", json_schema_extra=PERSONAL)
    credit_code: str | None = Field(default=None, description="统一社会信用代码 (organisations)")
    is_organisation: bool = Field(default=False, description="单位 rather than a person")


class Lawyer(BaseModel):
    """承办律师."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="律师姓名")
    firm: str | None = Field(default=None, description="律师事务所")
    license_no: str | None = Field(default=None, description="执业证号")


class Feedback(BaseModel):
    """One entry of the application's feedback log (反馈记录)."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="requestId (the idempotency key of the write-back)")
    kind: str = Field(description="ACCEPT, PROGRESS, CLOSE or RETURN")
    message: str = Field(default="", description="反馈内容")
    operator: str = Field(default="", description="操作人")
    at: datetime | None = Field(default=None, description="反馈时间 in UTC")


class LegalAidSource(SourceRecord):
    """A legal-aid application (法律援助申请) as the legal-aid system holds it now."""

    subject: str | None = Field(default=None, description="申请事项")
    applicant: Party | None = Field(default=None, description="申请人")
    applicant_category: str | None = Field(default=None, description="申请人类别, e.g. 农民工, 低保户")
    opponent: Party | None = Field(default=None, description="对方当事人")
    aid_type: str | None = Field(default=None, description="案件类别: 民事, 刑事, 行政, 国家赔偿 …")
    service_type: str | None = Field(default=None, description="援助事项类别, e.g. 劳动仲裁代理")
    matter_category: str | None = Field(default=None, description="事项分类 (leaf label)")
    matter: str | None = Field(default=None, description="案情及申请理由")
    street: str | None = Field(default=None, description="所属街道")
    community: str | None = Field(default=None, description="所属社区")
    address: str | None = Field(default=None, description="地址")
    status: str = Field(description="办理状态: RECEIVED, UNDER_REVIEW, LAWYER_ASSIGNED, CLOSED")
    review_decision: str = Field(description="审查决定: PENDING, GRANTED, DENIED, WITHDRAWN")
    assigned_lawyer: Lawyer | None = Field(default=None, description="承办律师")
    submitted_at_text: str | None = Field(default=None, description="submittedAt as sent (+08:00)")
    updated_at_text: str | None = Field(default=None, description="updatedAt as sent (+08:00)")
    submitted_at: datetime | None = Field(default=None, description="申请时间 in UTC")
    updated_at: datetime | None = Field(default=None, description="更新时间 in UTC")
    feedback: list[Feedback] = Field(default_factory=list, description="反馈记录")


def parse_time(value: object) -> datetime:
    """An ISO-8601 time with an offset → aware UTC; raises ``ValueError`` (a time without one too)."""
    if not isinstance(value, str):
        raise ValueError(f"not a time string: {value!r}")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"no offset in {value!r}")
    return moment.astimezone(UTC)


def unified_status(status: str, decision: str) -> UnifiedStatus:
    """The unified status of (status, reviewDecision); ``ValueError`` for words the system does not use."""
    if status not in STATUSES or decision not in DECISIONS:
        raise ValueError(f"unknown status/reviewDecision {status!r}/{decision!r}")
    if decision == "DENIED":
        return UnifiedStatus.REJECTED
    if decision == "WITHDRAWN":
        return UnifiedStatus.CLOSED
    if status == "CLOSED":
        return UnifiedStatus.RESOLVED if decision == "GRANTED" else UnifiedStatus.RETURNED
    return _OPEN[status]


def status_word(status: object, decision: object) -> str:
    return f"{status}/{decision}"


def _text(node: Mapping[str, Any] | None, key: str) -> str | None:
    value = None if node is None else node.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _mapping(node: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = node.get(key)
    return value if isinstance(value, Mapping) else None


def _party(raw: Mapping[str, Any] | None) -> Party | None:
    if raw is None:
        return None
    return Party(name=_text(raw, "name"), phone=_text(raw, "phone"), id_card=_text(raw, "idCard"),
                 credit_code=_text(raw, "creditCode"), is_organisation=raw.get("isOrganisation") is True)


def _identity(raw: object) -> tuple[Mapping[str, Any], str]:
    if not isinstance(raw, Mapping):
        raise BadRecord(None, "application is not an object", raw)
    number = _text(raw, "applicationNo")
    if number is None:
        raise BadRecord(None, "applicationNo is missing", dict(raw))
    return raw, number


def _case_parties(node: Mapping[str, Any]) -> tuple[CaseParty, ...]:
    parties = []
    for role, key in (("申请人", "applicant"), ("对方当事人", "opponent")):
        party = _party(_mapping(node, key))
        if party is not None:
            parties.append(CaseParty(role=role, name=party.name, phone=party.phone,
                                     id_number=party.id_card or party.credit_code,
                                     is_organisation=party.is_organisation))
    return tuple(parties)


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def application_to_record(raw: object, channel: str) -> CaseRecord:
    """Normalise one application; raises :class:`BadRecord` with the reason when it cannot be."""
    node, number = _identity(raw)
    status, decision = _text(node, "status") or "", _text(node, "reviewDecision") or ""
    try:
        unified = unified_status(status, decision)
        submitted, updated = parse_time(node.get("submittedAt")), parse_time(node.get("updatedAt"))
    except ValueError as exc:
        raise BadRecord(number, str(exc), dict(node)) from None
    category = _text(node, "matterCategory")
    try:
        return CaseRecord(
            channel=channel, source_id=number,
            title=_text(node, "subject") or f"{category or '法律援助'}申请（{number}）",
            content=_text(node, "matter") or "", category_hint=category,
            place=Place(street=_text(node, "street"), community=_text(node, "community"),
                        address=_text(node, "address")),
            parties=_case_parties(node), status=unified, source_status=status_word(status, decision),
            received_at=submitted, updated_at=updated,
            extra={"援助类型": _text(node, "aidType"), "援助事项类别": _text(node, "serviceType"),
                   "申请人类别": _text(node, "applicantCategory"), "审查决定": decision})
    except ValidationError as exc:
        raise BadRecord(number, _reason(exc), dict(node)) from None


def _maybe_time(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _lawyer(raw: Mapping[str, Any] | None) -> Lawyer | None:
    name = _text(raw, "name")
    if raw is None or name is None:
        return None
    return Lawyer(name=name, firm=_text(raw, "firm"), license_no=_text(raw, "licenseNo"))


def _feedback(value: object) -> list[Feedback]:
    if not isinstance(value, list):
        return []
    return [Feedback(request_id=_text(f, "requestId") or "", kind=_text(f, "kind") or "",
                     message=_text(f, "message") or "", operator=_text(f, "operator") or "",
                     at=_maybe_time(f.get("at")))
            for f in value if isinstance(f, Mapping)]


def application_to_source(raw: object) -> LegalAidSource:
    """The live record of one application (lenient: a field the system could not render stays empty)."""
    node, number = _identity(raw)
    try:
        return LegalAidSource(
            source_id=number, subject=_text(node, "subject"), applicant=_party(_mapping(node, "applicant")),
            applicant_category=_text(node, "applicantCategory"), opponent=_party(_mapping(node, "opponent")),
            aid_type=_text(node, "aidType"), service_type=_text(node, "serviceType"),
            matter_category=_text(node, "matterCategory"), matter=_text(node, "matter"),
            street=_text(node, "street"), community=_text(node, "community"), address=_text(node, "address"),
            status=_text(node, "status") or "", review_decision=_text(node, "reviewDecision") or "",
            assigned_lawyer=_lawyer(_mapping(node, "assignedLawyer")),
            submitted_at_text=_text(node, "submittedAt"), updated_at_text=_text(node, "updatedAt"),
            submitted_at=_maybe_time(node.get("submittedAt")), updated_at=_maybe_time(node.get("updatedAt")),
            feedback=_feedback(node.get("feedback")))
    except ValidationError as exc:
        raise BadRecord(number, _reason(exc), dict(node)) from None

"""Mapping the petition system's records (信访件, ``<xf:item>``) into the case model and the live source
record.

Items use Chinese element names in the service's namespace (信访件编号, 信访形式, 标题, 主要诉求, 问题类别,
是否集体访, 人数, 信访人列表/信访人, 被反映人, 问题属地, 办理状态, 承办单位, 登记时间, 更新时间 …) and
Beijing-time ``yyyyMMddHHmmss`` times.

办理状态 → unified status (why):

========  ===========  =====================================================================
办理状态   unified      why
========  ===========  =====================================================================
待受理     SUBMITTED    registered, acceptance not yet decided (decide within 15 days)
已受理     ACCEPTED     accepted; not yet forwarded to a handling unit
办理中     IN_PROGRESS  forwarded (转办) and being handled
已答复     RESOLVED     the 答复意见书 is served; the petitioner may still ask for review
已办结     CLOSED       concluded
不予受理   REJECTED     not accepted
已退回     RETURNED     a handling unit sent it back to the petition bureau (退回)
========  ===========  =====================================================================
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.petition.soap import xf
from connectors.records import CaseRecord, Party, Place, UnifiedStatus

__all__ = [
    "BEIJING",
    "STATUS",
    "TIME_FORMAT",
    "HandlingStep",
    "PetitionSource",
    "Petitioner",
    "format_time",
    "item_to_record",
    "item_to_source",
    "parse_time",
    "raw_item",
]

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y%m%d%H%M%S"
STATUS: dict[str, UnifiedStatus] = {
    "待受理": UnifiedStatus.SUBMITTED,
    "已受理": UnifiedStatus.ACCEPTED,
    "办理中": UnifiedStatus.IN_PROGRESS,
    "已答复": UnifiedStatus.RESOLVED,
    "已办结": UnifiedStatus.CLOSED,
    "不予受理": UnifiedStatus.REJECTED,
    "已退回": UnifiedStatus.RETURNED,
}
PERSONAL: dict[str, JsonValue] = {"personal": True}  # marks fields holding personal data, for masking above
_DIGITS14 = re.compile(r"\d{14}")


def parse_time(value: str | None) -> datetime:
    """Beijing ``yyyyMMddHHmmss`` → aware UTC; raises ``ValueError`` (the zero date too)."""
    if value is None or not _DIGITS14.fullmatch(value):
        raise ValueError(f"not a yyyyMMddHHmmss time: {value!r}")
    try:
        local = datetime.strptime(value, TIME_FORMAT)
    except ValueError:
        raise ValueError(f"not a valid yyyyMMddHHmmss time: {value!r}") from None
    return local.replace(tzinfo=BEIJING).astimezone(UTC)


def format_time(moment: datetime) -> str:
    """An aware time as the service spells it: Beijing ``yyyyMMddHHmmss``."""
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


class Petitioner(BaseModel):
    """A petitioner (信访人), or a representative (代表) of a group petition."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(default=None, description="姓名", json_schema_extra=PERSONAL)
    id_number: str | None = Field(default=None, description="身份证号 (18 digits)",
                                  json_schema_extra=PERSONAL)
    phone: str | None = Field(default=None, description="联系电话", json_schema_extra=PERSONAL)
    role: str = Field(default="信访人", description="角色: 信访人 or 代表 (of a group petition)")


class HandlingStep(BaseModel):
    """One entry of the petition's handling log (办理记录)."""

    model_config = ConfigDict(frozen=True)

    serial_no: str = Field(description="流水号 (the idempotency key of the write-back)")
    action: str = Field(description="操作: 受理, 转办, 答复, 办结 or 退回")
    content: str = Field(default="", description="内容")
    operator: str = Field(default="", description="操作人")
    department: str = Field(default="", description="承办单位")
    at: datetime | None = Field(default=None, description="操作时间 in UTC")


class PetitionSource(SourceRecord):
    """A petition (信访件) as the petition system holds it now."""

    form: str | None = Field(default=None, description="信访形式: 来信, 来访, 网上, 电话")
    title: str = Field(default="", description="标题")
    content: str = Field(default="", description="主要诉求")
    category: str | None = Field(default=None, description="问题类别 (leaf label)")
    is_group: bool = Field(default=False, description="是否集体访")
    head_count: int | None = Field(default=None, description="人数")
    petitioners: list[Petitioner] = Field(default_factory=list, description="信访人列表")
    respondent: str | None = Field(default=None, description="被反映人 (名称)", json_schema_extra=PERSONAL)
    respondent_type: str | None = Field(default=None, description="被反映人类型: 单位 or 个人")
    street: str | None = Field(default=None, description="问题属地·街道")
    community: str | None = Field(default=None, description="问题属地·社区")
    address: str | None = Field(default=None, description="问题属地·地址")
    status: str = Field(description="办理状态: 待受理, 已受理, 办理中, 已答复, 已办结, 不予受理, 已退回")
    handling_unit: str | None = Field(default=None, description="承办单位")
    registered_at_text: str | None = Field(default=None, description="登记时间 as sent (Beijing, 14 digits)")
    updated_at_text: str | None = Field(default=None, description="更新时间 as sent (Beijing, 14 digits)")
    registered_at: datetime | None = Field(default=None, description="登记时间 in UTC")
    updated_at: datetime | None = Field(default=None, description="更新时间 in UTC")
    acceptance_due: datetime | None = Field(default=None, description="受理期限 in UTC")
    handling_due: datetime | None = Field(default=None, description="办理期限 in UTC")
    steps: list[HandlingStep] = Field(default_factory=list, description="办理记录")


def _text(parent: Element | None, name: str) -> str | None:
    element = None if parent is None else parent.find(xf(name))
    text = None if element is None or element.text is None else element.text.strip()
    return text or None


def raw_item(item: Element) -> str:
    """The item as the service sent it (for the quarantine)."""
    return ET.tostring(item, encoding="unicode")


def _petitioners(item: Element) -> list[Petitioner]:
    return [Petitioner(name=_text(p, "姓名"), id_number=(_text(p, "身份证号") or "").upper() or None,
                       phone=_text(p, "联系电话"), role=_text(p, "角色") or "信访人")
            for p in item.findall(f"{xf('信访人列表')}/{xf('信访人')}")]


def _head_count(item: Element) -> int | None:
    text = _text(item, "人数")
    if text is None:
        return None
    if not text.isdigit():
        raise ValueError(f"人数 is not a whole number: {text!r}")
    return int(text)


def _time(item: Element, name: str) -> datetime:
    try:
        return parse_time(_text(item, name))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _maybe_time(value: str | None) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def _parties(item: Element) -> tuple[Party, ...]:
    parties = [Party(role=p.role, name=p.name, phone=p.phone, id_number=p.id_number)
               for p in _petitioners(item)]
    respondent = item.find(xf("被反映人"))
    if respondent is not None and _text(respondent, "名称"):
        parties.append(Party(role="被反映人", name=_text(respondent, "名称"),
                             is_organisation=_text(respondent, "类型") == "单位"))
    return tuple(parties)


def item_to_record(item: Element, channel: str) -> CaseRecord:
    """Normalise one ``<xf:item>``; raises :class:`BadRecord` with the reason when it cannot be."""
    petition_no = _text(item, "信访件编号")
    if petition_no is None:
        raise BadRecord(None, "信访件编号 is missing", raw_item(item))
    status = _text(item, "办理状态") or ""
    if status not in STATUS:
        raise BadRecord(petition_no, f"unknown 办理状态 {status!r}", raw_item(item))
    try:
        registered, updated = _time(item, "登记时间"), _time(item, "更新时间")
        head_count = _head_count(item)
    except ValueError as exc:
        raise BadRecord(petition_no, str(exc), raw_item(item)) from None
    place = item.find(xf("问题属地"))
    category = _text(item, "问题类别")
    try:
        return CaseRecord(
            channel=channel, source_id=petition_no,
            title=_text(item, "标题") or f"{category or '信访事项'}（{petition_no}）",
            content=_text(item, "主要诉求") or "", category_hint=category,
            place=Place(street=_text(place, "街道"), community=_text(place, "社区"),
                        address=_text(place, "地址")),
            parties=_parties(item), status=STATUS[status], source_status=status,
            received_at=registered, updated_at=updated,
            extra={"信访形式": _text(item, "信访形式"), "人数": head_count,
                   "集体访": _text(item, "是否集体访") == "是", "承办单位": _text(item, "承办单位")})
    except ValidationError as exc:
        raise BadRecord(petition_no, _reason(exc), raw_item(item)) from None


def _steps(item: Element) -> list[HandlingStep]:
    return [HandlingStep(serial_no=_text(r, "流水号") or "", action=_text(r, "操作") or "",
                         content=_text(r, "内容") or "", operator=_text(r, "操作人") or "",
                         department=_text(r, "承办单位") or "", at=_maybe_time(_text(r, "操作时间")))
            for r in item.findall(f"{xf('办理记录')}/{xf('记录')}")]


def item_to_source(item: Element) -> PetitionSource:
    """The live record of one petition (lenient: what cannot be read is left empty)."""
    petition_no = _text(item, "信访件编号")
    if petition_no is None:
        raise BadRecord(None, "信访件编号 is missing", raw_item(item))
    place, respondent = item.find(xf("问题属地")), item.find(xf("被反映人"))
    try:
        head_count = _head_count(item)
    except ValueError:
        head_count = None
    try:
        return PetitionSource(
            source_id=petition_no, form=_text(item, "信访形式"), title=_text(item, "标题") or "",
            content=_text(item, "主要诉求") or "", category=_text(item, "问题类别"),
            is_group=_text(item, "是否集体访") == "是", head_count=head_count, petitioners=_petitioners(item),
            respondent=_text(respondent, "名称"), respondent_type=_text(respondent, "类型"),
            street=_text(place, "街道"), community=_text(place, "社区"), address=_text(place, "地址"),
            status=_text(item, "办理状态") or "", handling_unit=_text(item, "承办单位"),
            registered_at_text=_text(item, "登记时间"), updated_at_text=_text(item, "更新时间"),
            registered_at=_maybe_time(_text(item, "登记时间")),
            updated_at=_maybe_time(_text(item, "更新时间")),
            acceptance_due=_maybe_time(_text(item, "受理期限")),
            handling_due=_maybe_time(_text(item, "办理期限")),
            steps=_steps(item))
    except ValidationError as exc:
        raise BadRecord(petition_no, _reason(exc), raw_item(item)) from None

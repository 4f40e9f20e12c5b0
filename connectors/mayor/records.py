"""Mapping the district-head hotline's letters (来信) into the case model and the live source record.

Letters come with Chinese keys (编号, 标题, 来信人 …), status words (待签收, 办理中, 已办结, 已答复,
不予受理, 已退回) and times as epoch milliseconds. Bodies are GBK; text the connector could not
decode arrives here with lone surrogates (``surrogateescape``) and makes its letter a BadRecord.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Party, Place, UnifiedStatus

__all__ = ["STATUS", "HandlingStep", "MayorSource", "letter_to_record", "letter_to_source", "parse_ms",
           "undecodable_fields"]

STATUS: dict[str, UnifiedStatus] = {
    "待签收": UnifiedStatus.SUBMITTED,
    "办理中": UnifiedStatus.IN_PROGRESS,
    "已办结": UnifiedStatus.RESOLVED,
    "已答复": UnifiedStatus.CLOSED,
    "不予受理": UnifiedStatus.REJECTED,
    "已退回": UnifiedStatus.RETURNED,
}
PERSONAL: dict[str, JsonValue] = {"personal": True}  # marks fields holding personal data, for masking above
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes surrogateescape could not decode
MIN_MS = 946_684_800_000  # 2000-01-01: anything earlier is not a real 区长热线 time


class HandlingStep(BaseModel):
    """One entry of 办理记录."""

    model_config = ConfigDict(frozen=True)

    serial: str = Field(description="操作流水号 (the idempotency key of the write-back)")
    operation: str = Field(description="操作: 签收, 回复, 办结, 退回")
    content: str = Field(default="", description="内容")
    operator: str = Field(default="", description="操作人")
    at_ms: int | None = Field(default=None, description="操作时间, epoch milliseconds")


class MayorSource(SourceRecord):
    """A letter to the district-head hotline (区长热线) as that system holds it now."""

    title: str = Field(description="标题")
    content: str = Field(default="", description="内容")
    writer: str | None = Field(default=None, description="来信人", json_schema_extra=PERSONAL)
    phone: str | None = Field(default=None, description="联系电话", json_schema_extra=PERSONAL)
    id_number: str | None = Field(default=None, description="身份证号", json_schema_extra=PERSONAL)
    street: str | None = Field(default=None, description="所属街道")
    community: str | None = Field(default=None, description="所属社区")
    address: str | None = Field(default=None, description="详细地址")
    category: str | None = Field(default=None, description="问题类别")
    way: str | None = Field(default=None, description="来信方式: 网站, 微信, 信件, APP")
    status: str = Field(description="办理状态: 待签收, 办理中, 已办结, 已答复, 不予受理, 已退回")
    submitted_at_ms: int | None = Field(default=None, description="提交时间, epoch milliseconds as sent")
    updated_at_ms: int | None = Field(default=None, description="更新时间, epoch milliseconds as sent")
    submitted_at: datetime | None = Field(default=None, description="提交时间 in UTC")
    updated_at: datetime | None = Field(default=None, description="更新时间 in UTC")
    steps: list[HandlingStep] = Field(default_factory=list, description="办理记录")


def parse_ms(value: object) -> int:
    """An epoch-millisecond number (or digit string) → int; raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not epoch milliseconds: {value!r}")
    ms = int(value.strip()) if isinstance(value, str) else int(value)
    if ms < MIN_MS:
        raise ValueError(f"not a plausible epoch-millisecond time: {value!r}")
    return ms


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def undecodable_fields(letter: Mapping[str, Any]) -> list[str]:
    """Keys whose text holds bytes the declared charset could not decode."""
    return [str(key) for key, value in letter.items() if isinstance(value, str) and _ESCAPED.search(value)]


def clean(value: Any) -> Any:
    """``value`` with undecodable bytes shown as U+FFFD, safe to store and log (for BadRecord.raw)."""
    if isinstance(value, str):
        return _ESCAPED.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _text(letter: Mapping[str, Any], key: str) -> str | None:
    value = letter.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _identity(raw: object) -> tuple[Mapping[str, Any], str]:
    if not isinstance(raw, Mapping):
        raise BadRecord(None, "letter is not a JSON object", clean(raw))
    letter_id = _text(raw, "编号")
    if letter_id is None or _ESCAPED.search(letter_id):
        raise BadRecord(None, "编号 is missing or unreadable", clean(dict(raw)))
    return raw, letter_id


def _status(letter: Mapping[str, Any], letter_id: str) -> str:
    word = _text(letter, "办理状态") or ""
    if word not in STATUS:
        raise BadRecord(letter_id, f"unknown 办理状态 {clean(word)!r}", clean(dict(letter)))
    return word


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def letter_to_record(raw: object, channel: str) -> CaseRecord:
    """Normalise one letter; raises :class:`BadRecord` with the reason when it cannot be."""
    letter, letter_id = _identity(raw)
    broken = undecodable_fields(letter)
    if broken:
        raise BadRecord(letter_id, f"text not decodable as the declared charset in {', '.join(broken)}",
                        clean(dict(letter)))
    word = _status(letter, letter_id)
    try:
        submitted, updated = parse_ms(letter.get("提交时间")), parse_ms(letter.get("更新时间"))
    except ValueError as exc:
        raise BadRecord(letter_id, f"提交时间/更新时间: {exc}", clean(dict(letter))) from None
    try:
        return CaseRecord(
            channel=channel, source_id=letter_id, title=_text(letter, "标题") or "",
            content=_text(letter, "内容") or "", category_hint=_text(letter, "问题类别"),
            place=Place(street=_text(letter, "所属街道"), community=_text(letter, "所属社区"),
                        address=_text(letter, "详细地址")),
            parties=(Party(role="来信人", name=_text(letter, "来信人"), phone=_text(letter, "联系电话"),
                           id_number=_text(letter, "身份证号")),),
            status=STATUS[word], source_status=word, received_at=_at(submitted), updated_at=_at(updated),
            extra={"来信方式": _text(letter, "来信方式")})
    except ValidationError as exc:
        raise BadRecord(letter_id, _reason(exc), clean(dict(letter))) from None


def _maybe_ms(value: object) -> int | None:
    try:
        return parse_ms(value)
    except ValueError:
        return None


def _steps(value: object) -> list[HandlingStep]:
    if not isinstance(value, list):
        return []
    return [HandlingStep(serial=str(s.get("操作流水号", "")), operation=str(s.get("操作", "")),
                         content=str(s.get("内容", "")), operator=str(s.get("操作人", "")),
                         at_ms=_maybe_ms(s.get("操作时间")))
            for s in (clean(item) for item in value) if isinstance(s, Mapping)]


def letter_to_source(raw: object) -> MayorSource:
    """The live record of one letter (lenient: undecodable text is shown with U+FFFD)."""
    mapping, letter_id = _identity(raw)
    letter: Mapping[str, Any] = clean(dict(mapping))
    submitted, updated = _maybe_ms(letter.get("提交时间")), _maybe_ms(letter.get("更新时间"))
    try:
        return MayorSource(
            source_id=letter_id, title=_text(letter, "标题") or "", content=_text(letter, "内容") or "",
            writer=_text(letter, "来信人"), phone=_text(letter, "联系电话"),
            id_number=_text(letter, "身份证号"), street=_text(letter, "所属街道"),
            community=_text(letter, "所属社区"), address=_text(letter, "详细地址"),
            category=_text(letter, "问题类别"), way=_text(letter, "来信方式"),
            status=_text(letter, "办理状态") or "", submitted_at_ms=submitted, updated_at_ms=updated,
            submitted_at=None if submitted is None else _at(submitted),
            updated_at=None if updated is None else _at(updated), steps=_steps(letter.get("办理记录")))
    except ValidationError as exc:
        raise BadRecord(letter_id, _reason(exc), letter) from None

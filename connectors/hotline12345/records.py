"""Mapping the 12345 hotline's work orders (工单) into the case model and the live source record.

Work orders use pinyin-abbreviated keys (gdbh 工单编号, bt 标题, ldhm 来电号码 …), status codes
``zt`` 1–4, a 退单 flag ``tdbz``, ``jd_wd`` as ``"lng,lat"`` and Beijing-time strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Party, Place, UnifiedStatus

__all__ = ["STATUS", "Action", "Hotline12345Source", "order_to_record", "order_to_source", "parse_time"]

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STATUS: dict[str, tuple[str, UnifiedStatus]] = {
    "1": ("待受理", UnifiedStatus.SUBMITTED),
    "2": ("办理中", UnifiedStatus.IN_PROGRESS),
    "3": ("已办结", UnifiedStatus.RESOLVED),
    "4": ("已关闭", UnifiedStatus.CLOSED),
}
RETURNED_WORD = "已退单"
PERSONAL: dict[str, JsonValue] = {"personal": True}  # marks fields holding personal data, for masking above


class Action(BaseModel):
    """One entry of the work order's action log (操作记录 czjl)."""

    model_config = ConfigDict(frozen=True)

    action_id: str = Field(description="czid 操作编号 (the idempotency key of the write-back)")
    kind: str = Field(description="lx 操作类型: qianshou 签收, huifu 回复, banjie 办结, tuidan 退单")
    message: str = Field(default="", description="nr 操作内容")
    actor: str = Field(default="", description="czr 操作人")
    department: str = Field(default="", description="bm 部门")
    at_local: str = Field(default="", description="czsj 操作时间, Beijing time yyyy-MM-dd HH:mm:ss")


class Hotline12345Source(SourceRecord):
    """A 12345 hotline work order (工单) as the hotline system holds it now."""

    title: str = Field(description="bt 标题")
    content: str = Field(default="", description="nr 内容")
    caller_name: str | None = Field(default=None, description="ldrxm 来电人姓名", json_schema_extra=PERSONAL)
    caller_phone: str | None = Field(default=None, description="ldhm 来电号码", json_schema_extra=PERSONAL)
    caller_id_number: str | None = Field(default=None, description="sfzh 身份证号 (often not given)",
                                         json_schema_extra=PERSONAL)
    street: str | None = Field(default=None, description="jd 街道")
    community: str | None = Field(default=None, description="sq 社区")
    address: str | None = Field(default=None, description="dz 地址")
    lng: float | None = Field(default=None, description="经度, from jd_wd")
    lat: float | None = Field(default=None, description="纬度, from jd_wd")
    category: str | None = Field(default=None, description="lb 诉求类别 (leaf label)")
    status_code: str = Field(description="zt 状态: 1 待受理, 2 办理中, 3 已办结, 4 已关闭/已回访")
    status_word: str = Field(description="the status as the hotline names it (已退单 when tdbz=1)")
    returned: bool = Field(default=False, description="tdbz 退单标志")
    accepted_at_local: str = Field(description="slsj 受理时间, Beijing time as sent")
    updated_at_local: str = Field(description="gxsj 更新时间, Beijing time as sent")
    accepted_at: datetime | None = Field(default=None, description="slsj in UTC")
    updated_at: datetime | None = Field(default=None, description="gxsj in UTC")
    actions: list[Action] = Field(default_factory=list, description="czjl 操作记录")


def parse_time(text: object) -> datetime:
    """A Beijing-time ``yyyy-MM-dd HH:mm:ss`` string → aware UTC; raises ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError(f"not a time string: {text!r}")
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def _text(order: Mapping[str, Any], key: str) -> str | None:
    value = order.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _coordinates(value: object) -> tuple[float | None, float | None]:
    """``"lng,lat"`` → (lat, lng); unreadable or out-of-range coordinates are dropped, not fatal."""
    if not isinstance(value, str) or "," not in value:
        return None, None
    try:
        lng, lat = (float(part) for part in value.split(",", 1))
    except ValueError:
        return None, None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None, None
    return lat, lng


def _identity(order: object) -> tuple[Mapping[str, Any], str]:
    if not isinstance(order, Mapping):
        raise BadRecord(None, "work order is not a JSON object", order)
    gdbh = _text(order, "gdbh")
    if gdbh is None:
        raise BadRecord(None, "gdbh (工单编号) is missing", dict(order))
    return order, gdbh


def _status(order: Mapping[str, Any], gdbh: str) -> tuple[str, str, UnifiedStatus]:
    code = _text(order, "zt") or ""
    if code not in STATUS:
        raise BadRecord(gdbh, f"unknown zt (状态) {order.get('zt')!r}", dict(order))
    word, status = STATUS[code]
    if code == "1" and _text(order, "tdbz") == "1":
        return code, RETURNED_WORD, UnifiedStatus.RETURNED
    return code, word, status


def _times(order: Mapping[str, Any], gdbh: str) -> tuple[datetime, datetime]:
    try:
        return parse_time(order.get("slsj")), parse_time(order.get("gxsj"))
    except ValueError:
        raise BadRecord(gdbh, f"slsj/gxsj not yyyy-MM-dd HH:mm:ss: {order.get('slsj')!r}, "
                              f"{order.get('gxsj')!r}", dict(order)) from None


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def order_to_record(raw: object, channel: str) -> CaseRecord:
    """Normalise one work order; raises :class:`BadRecord` with the reason when it cannot be."""
    order, gdbh = _identity(raw)
    _, word, status = _status(order, gdbh)
    received_at, updated_at = _times(order, gdbh)
    lat, lng = _coordinates(order.get("jd_wd"))
    try:
        return CaseRecord(
            channel=channel, source_id=gdbh, title=_text(order, "bt") or "", content=_text(order, "nr") or "",
            category_hint=_text(order, "lb"),
            place=Place(street=_text(order, "jd"), community=_text(order, "sq"), address=_text(order, "dz"),
                        lat=lat, lng=lng),
            parties=(Party(role="来电人", name=_text(order, "ldrxm"), phone=_text(order, "ldhm"),
                           id_number=_text(order, "sfzh")),),
            status=status, source_status=word, received_at=received_at, updated_at=updated_at,
            extra={"退单": _text(order, "tdbz") == "1"})
    except ValidationError as exc:
        raise BadRecord(gdbh, _reason(exc), dict(order)) from None


def _actions(value: object) -> list[Action]:
    if not isinstance(value, list):
        return []
    return [Action(action_id=str(e.get("czid", "")), kind=str(e.get("lx", "")),
                   message=str(e.get("nr", "")), actor=str(e.get("czr", "")),
                   department=str(e.get("bm", "")), at_local=str(e.get("czsj", "")))
            for e in value if isinstance(e, Mapping)]


def _maybe_time(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def order_to_source(raw: object) -> Hotline12345Source:
    """The live record of one work order (lenient: only gdbh, bt and zt are required)."""
    order, gdbh = _identity(raw)
    code, word, _ = _status(order, gdbh)
    lat, lng = _coordinates(order.get("jd_wd"))
    try:
        return Hotline12345Source(
            source_id=gdbh, title=_text(order, "bt") or "", content=_text(order, "nr") or "",
            caller_name=_text(order, "ldrxm"), caller_phone=_text(order, "ldhm"),
            caller_id_number=_text(order, "sfzh"), street=_text(order, "jd"), community=_text(order, "sq"),
            address=_text(order, "dz"), lng=lng, lat=lat, category=_text(order, "lb"), status_code=code,
            status_word=word, returned=_text(order, "tdbz") == "1",
            accepted_at_local=str(order.get("slsj") or ""), updated_at_local=str(order.get("gxsj") or ""),
            accepted_at=_maybe_time(order.get("slsj")), updated_at=_maybe_time(order.get("gxsj")),
            actions=_actions(order.get("czjl")))
    except ValidationError as exc:
        raise BadRecord(gdbh, _reason(exc), dict(order)) from None

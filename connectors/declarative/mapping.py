"""Field mapping of the declarative connector: channel JSON → :class:`~connectors.records.CaseRecord`.

A field expression is a dotted path (``reporter.phone``; list items by number, ``steps.0.at``) or a
mapping ``{path | const, map, default}``: ``map`` translates the channel's value (compared as text:
``1`` and ``"1"`` are the same key) and ``default`` stands in for a missing value or one not in
``map``. Times add ``format`` (``iso``, ``epoch_s``, ``epoch_ms`` or a strftime pattern) and ``tz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from connectors.declarative.spec import FieldSpec, RecordSpec, TimeSpec
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Party, Place, UnifiedStatus

__all__ = ["dig", "format_time", "parse_time", "to_record", "value_of"]

_MISSING = object()


def dig(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` of ``data`` (``""`` is ``data`` itself); ``None`` when absent."""
    for part in path.split(".") if path else ():
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def value_of(spec: FieldSpec | None, data: Any) -> Any:
    """Evaluate a field expression on one channel record."""
    if spec is None:
        return None
    value = spec.const if spec.path is None else dig(data, spec.path)
    if spec.map is not None and value is not None:
        return spec.map.get(str(value), spec.default)
    return spec.default if value is None or value == "" else value


def parse_time(value: Any, fmt: str, tz: str) -> datetime:
    """A channel's time as an aware UTC datetime.

    Raises:
        ValueError: the value does not read in ``fmt``.
    """
    if value is None or value == "":
        raise ValueError("missing")
    if fmt in ("epoch_s", "epoch_ms"):
        seconds = float(value) / (1000 if fmt == "epoch_ms" else 1)
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if fmt == "iso":
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        parsed = datetime.strptime(text, fmt)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def format_time(value: datetime, fmt: str, tz: str) -> str:
    """The inverse of :func:`parse_time`, for query parameters."""
    if fmt == "epoch_s":
        return str(int(value.timestamp()))
    if fmt == "epoch_ms":
        return str(int(value.timestamp() * 1000))
    local = value.astimezone(ZoneInfo(tz))
    return local.isoformat(timespec="seconds") if fmt == "iso" else local.strftime(fmt)


def _time(spec: TimeSpec, data: Any, label: str) -> datetime:
    try:
        return parse_time(value_of(spec, data), spec.format, spec.tz)
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        raise ValueError(f"{label} {value_of(spec, data)!r} does not read as {spec.format}: {exc}") from None


def _text(spec: FieldSpec | None, data: Any) -> str | None:
    value = value_of(spec, data)
    return None if value is None else str(value)


def _number(spec: FieldSpec | None, data: Any) -> float | None:
    value = value_of(spec, data)
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def source_id_of(spec: RecordSpec, data: Any) -> str | None:
    """The record's id, or ``None`` when it has none."""
    return _text(spec.id, data) if isinstance(data, Mapping) else None


def to_record(spec: RecordSpec, data: Any, channel: str) -> CaseRecord:
    """Map one channel record.

    Raises:
        BadRecord: the record lacks what the case model needs, or a value does not read.
    """
    source_id = source_id_of(spec, data)
    if not source_id:
        raise BadRecord(None, "record has no id", data)
    try:
        status = value_of(spec.status, data)
        word = dig(data, spec.status.path) if spec.status.path else status
        if status is None:
            raise ValueError(f"unknown status {word!r}")
        place = spec.place
        return CaseRecord(
            channel=channel, source_id=source_id, title=_text(spec.title, data) or "",
            content=_text(spec.content, data) or "", category_hint=_text(spec.category, data),
            status=UnifiedStatus(status), source_status=str(word),
            received_at=_time(spec.received_at, data, "received_at"),
            updated_at=_time(spec.updated_at, data, "updated_at"),
            place=Place(district=_text(place.district, data), street=_text(place.street, data),
                        community=_text(place.community, data), grid=_text(place.grid, data),
                        address=_text(place.address, data), lat=_number(place.lat, data),
                        lng=_number(place.lng, data)),
            parties=tuple(Party(role=_text(p.role, data) or "诉求人", name=_text(p.name, data),
                                phone=_text(p.phone, data), id_number=_text(p.id_number, data))
                          for p in spec.parties if value_of(p.name, data) or value_of(p.phone, data)),
            extra={key: _scalar(value_of(field, data)) for key, field in spec.extra.items()})
    except (ValueError, ValidationError) as exc:
        raise BadRecord(source_id, _reason(exc), data) from None


def _scalar(value: Any) -> str | int | float | bool | None:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)

"""The live record a declarative channel serves for ``Case.source``: the case fields plus the
spec's ``source`` fields as name/value pairs (one GraphQL type serves every declarative channel)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from connectors.base import SourceRecord
from connectors.declarative.mapping import parse_time, value_of
from connectors.declarative.spec import ConnectorSpec

__all__ = ["DeclarativeSource", "SourceField", "to_source"]


class SourceField(BaseModel):
    """One channel-specific field of a declarative channel's record."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str | None = None


class DeclarativeSource(SourceRecord):
    """A ticket of a channel wired by a declarative spec, as the channel shows it now."""

    title: str | None = None
    content: str | None = None
    status: str | None = None
    received_at: datetime | None = None
    updated_at: datetime | None = None
    fields: tuple[SourceField, ...] = ()


def to_source(spec: ConnectorSpec, raw: Any) -> DeclarativeSource | None:
    """Map one record of a batch answer; ``None`` when it has no id."""
    record = spec.record
    source_id = value_of(record.id, raw) if isinstance(raw, dict) else None
    if source_id in (None, ""):
        return None

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    def time(which: Any) -> datetime | None:
        try:
            return parse_time(value_of(which, raw), which.format, which.tz)
        except (ValueError, TypeError, OverflowError, OSError):
            return None

    word = value_of(record.status.model_copy(update={"map": None}), raw)
    return DeclarativeSource(
        source_id=str(source_id), title=text(value_of(record.title, raw)),
        content=text(value_of(record.content, raw)), status=text(word),
        received_at=time(record.received_at), updated_at=time(record.updated_at),
        fields=tuple(SourceField(name=name, value=text(value_of(field, raw)))
                     for name, field in spec.source.items()))

"""The normalised case record every connector produces, and the write-back action it consumes.

A connector maps its channel's ticket into a :class:`CaseRecord`: times as aware UTC
datetimes, the unified lifecycle status next to the channel's own status word, the place
as the channel gave it (street/community names, address, coordinates when known) and the
parties with their personal data. The gateway resolves names to region and category ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "CaseRecord",
    "ChangePage",
    "Deadline",
    "Party",
    "Place",
    "UnifiedStatus",
    "WriteBackAction",
    "WriteBackKind",
    "WriteBackResult",
]


class UnifiedStatus(StrEnum):
    """The unified lifecycle. ``RETURNED`` is 退单, ``REJECTED`` is 不予受理."""

    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    DISPATCHED = "DISPATCHED"
    SIGNED = "SIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    RETURNED = "RETURNED"
    REJECTED = "REJECTED"


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone (channels' local times are converted to UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Party(_Model):
    """A person or organisation on a ticket. Personal data is kept as the channel sent it."""

    role: str = Field(default="诉求人", description="诉求人, 申请人, 被申请人, 来信人 …")
    name: str | None = None
    phone: str | None = None
    id_number: str | None = Field(default=None, description="national ID (居民身份证号)")
    is_organisation: bool = False


class Place(_Model):
    """Where the incident is, as precisely as the channel knows it."""

    district: str | None = None
    street: str | None = Field(default=None, description="街道 name, e.g. 玉塘街道")
    community: str | None = Field(default=None, description="社区 name, e.g. 田寮社区")
    grid: str | None = None
    address: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class CaseRecord(_Model):
    """One ticket of one channel, normalised.

    ``(channel, source_id)`` identifies it; ingesting the same record twice changes nothing.
    ``extra`` carries channel-specific scalars (e.g. 信访形式, head count) for statistics.
    """

    channel: str = Field(min_length=1, max_length=64)
    source_id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    content: str = Field(default="", max_length=20000)
    category_hint: str | None = Field(default=None, description="the channel's own category word or code")
    place: Place = Field(default_factory=Place)
    parties: tuple[Party, ...] = ()
    status: UnifiedStatus
    source_status: str = Field(min_length=1, description="the channel's own status word or code")
    received_at: UtcDatetime
    updated_at: UtcDatetime
    extra: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class ChangePage(_Model):
    """One page of changes: the records, the ones that failed to normalise, and the cursor after it.

    The gateway stores ``records``, quarantines ``rejected`` and then persists ``cursor``, so a
    restart resumes after the last completed page.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    records: tuple[CaseRecord, ...] = ()
    rejected: tuple[Any, ...] = Field(default=(), description="connectors.errors.BadRecord instances")
    cursor: str | None = None


class WriteBackKind(StrEnum):
    """What the gateway asks the source system to record."""

    SIGN = "SIGN"
    REPLY = "REPLY"
    RESOLVE = "RESOLVE"
    RETURN = "RETURN"


class WriteBackAction(_Model):
    """A state change to write back to the source channel; ``action_id`` makes it idempotent."""

    action_id: str = Field(min_length=1, max_length=128)
    source_id: str
    kind: WriteBackKind
    message: str = ""
    actor: str = Field(description="the acting user, passed for the channel's own audit")
    department: str | None = None
    at: UtcDatetime


class WriteBackResult(_Model):
    """The channel's answer to a write-back."""

    action_id: str
    accepted: bool
    duplicate: bool = False
    source_status: str | None = None
    detail: str | None = None


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Deadline(_Model):
    """One promise a channel makes to residents, e.g. 局长信箱 signs within 10 minutes.

    Connectors declare them (:meth:`connectors.Connector.deadlines`); the deadline policies of
    casework read them as data. ``unit`` ``working_days`` skips weekends and public holidays.
    """

    step: str = Field(min_length=1, description="sign, contact, feedback, accept, handle …")
    within: float = Field(gt=0)
    unit: str = Field(pattern="^(minutes|hours|days|working_days)$")
    note: str | None = None

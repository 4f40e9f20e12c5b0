"""The domain's value objects, shared by the store, intake and the resolvers above."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from auth.rights import Scope
from connectors.records import Party, UnifiedStatus

__all__ = ["CasePage", "CaseQuery", "ChannelHealth", "HealthStatus", "IngestOutcome", "QuarantinedRecord",
           "RegionLevel", "StoredCase", "case_key", "split_case_key"]


def case_key(channel: str, source_id: str) -> str:
    """The store's id of a case: ``<channel>:<source id>`` (source ids may contain ':')."""
    return f"{channel}:{source_id}"


def split_case_key(key: str) -> tuple[str, str]:
    channel, _, source_id = key.partition(":")
    if not channel or not source_id:
        raise ValueError(f"not a case key: {key!r}")
    return channel, source_id


class RegionLevel(StrEnum):
    DISTRICT = "DISTRICT"
    STREET = "STREET"
    COMMUNITY = "COMMUNITY"
    GRID = "GRID"


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case as the store holds it: the normalised record with region and category resolved."""

    key: str                      # case_key(channel, source_id)
    channel: str
    source_id: str
    title: str
    content: str
    category_id: str | None       # most specific event-dictionary id
    region_id: str | None         # most specific region id (grid, community, street or district)
    address: str | None
    lat: float | None
    lng: float | None
    parties: tuple[Party, ...]
    status: UnifiedStatus
    source_status: str
    received_at: datetime
    updated_at: datetime
    ingested_at: datetime
    extra: dict[str, str | int | float | bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """The filters of GraphQL's ``CaseFilter``, in domain terms (ids already decoded)."""

    channels: tuple[str, ...] = ()
    statuses: tuple[UnifiedStatus, ...] = ()
    region_id: str | None = None      # includes everything beneath it
    category_id: str | None = None    # includes everything beneath it
    text: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    # restrict to these keys (e.g. a resident's own); None = no restriction
    case_keys: tuple[str, ...] | None = None
    # the viewer's rights (auth.rights.case_scope), filtered in the indexes; None = no restriction
    scope: Scope | None = None


@dataclass(frozen=True, slots=True)
class CasePage:
    cases: tuple[StoredCase, ...]
    total_count: int
    start_cursor: str | None
    end_cursor: str | None
    has_next_page: bool
    has_previous_page: bool = False


class IngestOutcome(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    channel: str
    source_id: str | None
    reason: str
    raw: str                      # truncated
    at: datetime


class HealthStatus(StrEnum):
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    status: HealthStatus
    last_sync_at: datetime | None
    lag_seconds: float | None
    last_error: str | None
    cases: int
    quarantined: int
    breaker_open: bool

"""Mapping GeoReport v2 service requests into the case model and the live source record.

A request has the spec's fields (service_request_id, status, status_notes, service_name, service_code,
description, agency_responsible, service_notice, requested_datetime, updated_datetime,
expected_datetime, address, address_id, zipcode, lat, long, media_url) and W3C times with an offset.
GeoReport has no title, no street or community and no reporter in its answers: the title is the
description's first sentence, the place is the address and coordinates (both absent for message-board
posts, whose text alone names the place), and there are no parties.

status → unified status (why):

======  ===========  =====================================================================
status  unified      why
======  ===========  =====================================================================
open    SUBMITTED    while nothing has happened to it (no status_notes, never updated)
open    IN_PROGRESS  once the city has touched it (status_notes, or updated after it came)
closed  CLOSED       GeoReport does not tell resolved from closed or refused; status_notes says
======  ===========  =====================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError

from connectors.base import SourceRecord
from connectors.errors import BadRecord
from connectors.records import CaseRecord, Place, UnifiedStatus

__all__ = ["Open311Source", "parse_w3c", "request_to_record", "request_to_source", "title_of", "w3c"]

TITLE_LENGTH = 40
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


class Open311Source(SourceRecord):
    """A GeoReport v2 service request as the Open311 endpoint holds it now."""

    status: str = Field(description="status: open or closed")
    status_notes: str | None = Field(default=None, description="status_notes: the city's note on the status")
    service_name: str | None = Field(default=None, description="service_name: the request type")
    service_code: str | None = Field(default=None, description="service_code")
    description: str = Field(default="", description="description: the resident's text")
    agency_responsible: str | None = Field(default=None, description="agency_responsible")
    service_notice: str | None = Field(default=None, description="service_notice")
    requested_datetime_text: str | None = Field(default=None, description="requested_datetime as sent (W3C)")
    updated_datetime_text: str | None = Field(default=None, description="updated_datetime as sent (W3C)")
    requested_datetime: datetime | None = Field(default=None, description="requested_datetime in UTC")
    updated_datetime: datetime | None = Field(default=None, description="updated_datetime in UTC")
    expected_datetime: datetime | None = Field(default=None, description="expected_datetime in UTC")
    address: str | None = Field(default=None, description="address (human-readable)")
    address_id: str | None = Field(default=None, description="address_id in the city's address register")
    zipcode: str | None = Field(default=None, description="zipcode")
    lat: float | None = Field(default=None, description="lat (WGS84)")
    long: float | None = Field(default=None, description="long (WGS84)")
    media_url: str | None = Field(default=None, description="media_url: a photo of the issue")


def parse_w3c(value: object) -> datetime:
    """A W3C / ISO 8601 time with Z or an offset → aware UTC; raises ``ValueError`` (no zone too)."""
    if not isinstance(value, str):
        raise ValueError(f"not a time string: {value!r}")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"no time zone in {value!r}")
    return moment.astimezone(UTC)


def w3c(moment: datetime) -> str:
    """An aware time in W3C form, UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _coordinate(value: object, limit: float) -> float | None:
    """A coordinate in range, or ``None`` (unreadable or out of range: dropped, not fatal)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and -limit <= number <= limit else None


def _maybe_time(value: object) -> datetime | None:
    try:
        return parse_w3c(value)
    except ValueError:
        return None


def title_of(description: str, service_name: str | None, request_id: str) -> str:
    """GeoReport has no title: the description's first sentence (shortened), else the service name."""
    first = _SENTENCE_END.split(description.strip(), maxsplit=1)[0].strip()
    if first:
        return first if len(first) <= TITLE_LENGTH else first[:TITLE_LENGTH] + "…"
    return service_name or f"城市服务诉求 {request_id}"


def _identity(raw: object) -> tuple[Mapping[str, Any], str]:
    if not isinstance(raw, Mapping):
        raise BadRecord(None, "request is not an object", raw)
    request_id = _text(raw, "service_request_id")
    if request_id is None:
        raise BadRecord(None, "service_request_id is missing", dict(raw))
    return raw, request_id


def _status(row: Mapping[str, Any], status: str, requested: datetime, updated: datetime) -> UnifiedStatus:
    if status == "closed":
        return UnifiedStatus.CLOSED
    touched = _text(row, "status_notes") is not None or updated > requested
    return UnifiedStatus.IN_PROGRESS if touched else UnifiedStatus.SUBMITTED


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])


def request_to_record(raw: object, channel: str) -> CaseRecord:
    """Normalise one service request; raises :class:`BadRecord` with the reason when it cannot be."""
    row, request_id = _identity(raw)
    status = (_text(row, "status") or "").lower()
    if status not in ("open", "closed"):
        raise BadRecord(request_id, f"status must be open or closed, not {status!r}", dict(row))
    try:
        requested = parse_w3c(row.get("requested_datetime"))
        given = row.get("updated_datetime")
        updated = requested if given in (None, "") else parse_w3c(given)
    except ValueError as exc:
        raise BadRecord(request_id, str(exc), dict(row)) from None
    description, service_name = _text(row, "description") or "", _text(row, "service_name")
    lat, lng = _coordinate(row.get("lat"), 90), _coordinate(row.get("long"), 180)
    if lat is None or lng is None:
        lat = lng = None
    try:
        return CaseRecord(
            channel=channel, source_id=request_id, title=title_of(description, service_name, request_id),
            content=description, category_hint=service_name or _text(row, "service_code"),
            place=Place(address=_text(row, "address"), lat=lat, lng=lng),
            status=_status(row, status, requested, updated), source_status=status,
            received_at=requested, updated_at=max(updated, requested),
            extra={"service_code": _text(row, "service_code"),
                   "agency_responsible": _text(row, "agency_responsible"),
                   "located": lat is not None or _text(row, "address") is not None,
                   "has_media": _text(row, "media_url") is not None})
    except ValidationError as exc:
        raise BadRecord(request_id, _reason(exc), dict(row)) from None


def request_to_source(raw: object) -> Open311Source:
    """The live record of one request (lenient: what cannot be read is left empty)."""
    row, request_id = _identity(raw)
    try:
        return Open311Source(
            source_id=request_id, status=(_text(row, "status") or "").lower(),
            status_notes=_text(row, "status_notes"), service_name=_text(row, "service_name"),
            service_code=_text(row, "service_code"), description=_text(row, "description") or "",
            agency_responsible=_text(row, "agency_responsible"), service_notice=_text(row, "service_notice"),
            requested_datetime_text=_text(row, "requested_datetime"),
            updated_datetime_text=_text(row, "updated_datetime"),
            requested_datetime=_maybe_time(row.get("requested_datetime")),
            updated_datetime=_maybe_time(row.get("updated_datetime")),
            expected_datetime=_maybe_time(row.get("expected_datetime")),
            address=_text(row, "address"), address_id=_text(row, "address_id"), zipcode=_text(row, "zipcode"),
            lat=_coordinate(row.get("lat"), 90), long=_coordinate(row.get("long"), 180),
            media_url=_text(row, "media_url"))
    except ValidationError as exc:
        raise BadRecord(request_id, _reason(exc), dict(row)) from None

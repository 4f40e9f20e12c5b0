"""The Open311 endpoint's service requests: the world's tickets as GeoReport v2 requests, the ones created by
``POST /requests``, and the per-request state that ``servicerequestupdates`` change.

Status by the world's generic stage: new, accepted and processing are ``open``; done, closed and rejected
are ``closed``; ``status_notes`` says more in Chinese. Message-board posts (tickets without a street) carry
no address, coordinates or zipcode — only their description names the place. Times are shown in Beijing
time with a ``+08:00`` offset, to the second. A ticket that arrives while the sandbox runs is requested at
the moment the endpoint first shows it.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.kit import ChannelSandbox
from sandbox.open311.services import Catalogue, Service
from sandbox.world import Ticket

__all__ = ["BEIJING", "NOTES", "RequestBook", "ServiceRequest", "UpdateRefused", "w3c"]

BEIJING = ZoneInfo("Asia/Shanghai")
ZIPCODE = "518107"
NOTES = {"new": None, "accepted": "已受理，已派发至{agency}", "processing": "{agency}正在处理",
         "done": "已处理完毕，感谢您的反映", "closed": "已办结",
         "rejected": "不予受理：经核查不属于本平台受理范围"}
CLOSED_STAGES = frozenset({"done", "closed", "rejected"})


def w3c(moment: datetime | None) -> str | None:
    """W3C / ISO 8601 in Beijing time with its offset, to the second."""
    if moment is None:
        return None
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(slots=True)
class ServiceRequest:
    service_request_id: str
    service: Service
    description: str
    requested: datetime
    updated: datetime
    status: str
    status_notes: str | None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    media_url: str | None = None
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # update_id → the update

    def render(self) -> dict[str, Any]:
        """The request as ``GET /requests`` shows it, fields in the spec's order."""
        located = self.address is not None or self.lat is not None
        expected = None if self.status == "closed" else self.requested + timedelta(days=self.service.days)
        return {"service_request_id": self.service_request_id, "status": self.status,
                "status_notes": self.status_notes, "service_name": self.service.name,
                "service_code": self.service.code, "description": self.description,
                "agency_responsible": self.service.agency, "service_notice": self.service.notice,
                "requested_datetime": w3c(self.requested), "updated_datetime": w3c(self.updated),
                "expected_datetime": w3c(expected), "address": self.address, "address_id": None,
                "zipcode": ZIPCODE if located else None, "lat": self.lat, "long": self.lng,
                "media_url": self.media_url}


class UpdateRefused(Exception):
    """An update the endpoint refuses: HTTP ``status`` with a GeoReport error description."""

    def __init__(self, status: int, description: str) -> None:
        self.status, self.description = status, description
        super().__init__(description)


def _from_ticket(ticket: Ticket, service: Service) -> ServiceRequest:
    notes = NOTES.get(ticket.stage)
    media = None
    if ticket.street is not None and zlib.crc32(ticket.source_id.encode()) % 3 == 0:
        media = f"http://sandbox.invalid/open311/media/{ticket.source_id}.jpg"
    return ServiceRequest(
        service_request_id=ticket.source_id, service=service, description=ticket.content,
        requested=ticket.received_at.replace(microsecond=0), updated=ticket.updated_at.replace(microsecond=0),
        status="closed" if ticket.stage in CLOSED_STAGES else "open",
        status_notes=None if notes is None else notes.format(agency=service.agency),
        address=ticket.address, lat=ticket.lat, lng=ticket.lng, media_url=media)


class RequestBook:
    """Service requests as the endpoint serves them; a ticket's request is made when it is first seen."""

    def __init__(self, sandbox: ChannelSandbox, catalogue: Catalogue) -> None:
        self.sandbox = sandbox
        self.catalogue = catalogue
        self.requests: dict[str, ServiceRequest] = {}
        self.created: list[str] = []
        numbers = [int(m.group(1)) for t in sandbox.tickets.values()
                   if (m := re.search(r"(\d+)$", t.source_id))]
        self._next = max(numbers, default=0) + 1

    def notice(self) -> None:
        for ticket in self.sandbox.visible():
            if ticket.source_id not in self.requests:
                request = _from_ticket(ticket, self.catalogue.for_label(ticket.category_path))
                if ticket.arrives_after > 0:
                    request.requested = request.updated = _now()
                self.requests[ticket.source_id] = request

    def get(self, service_request_id: str) -> ServiceRequest | None:
        self.notice()
        return self.requests.get(service_request_id)

    def search(self, start: datetime, end: datetime, codes: set[str] | None, statuses: set[str] | None
               ) -> list[ServiceRequest]:
        """Requests with start ≤ requested_datetime ≤ end (and the codes and statuses), newest first."""
        self.notice()
        found = [r for r in self.requests.values() if start <= r.requested <= end
                 and (codes is None or r.service.code in codes)
                 and (statuses is None or r.status in statuses)]
        return sorted(found, key=lambda r: (r.requested, r.service_request_id), reverse=True)

    def create(self, service: Service, description: str, address: str | None, lat: float | None,
               lng: float | None, media_url: str | None) -> ServiceRequest:
        self.notice()
        request_id = f"311-{self._next:06d}"
        self._next += 1
        now = _now()
        request = ServiceRequest(request_id, service, description, now, now, "open", None, address, lat, lng,
                                 media_url)
        self.requests[request_id] = request
        self.created.append(request_id)
        return request

    def update(self, request_id: str, update_id: str, status: str, fields: dict[str, str]
               ) -> tuple[bool, dict[str, Any]]:
        """Apply an update once per ``update_id``; returns (duplicate, the update)."""
        request = self.get(request_id)
        if request is None:
            raise UpdateRefused(404, f"service_request_id {request_id} not found")
        for other in self.requests.values():
            if update_id in other.updates:
                if other is not request:
                    raise UpdateRefused(400, f"update_id {update_id} was used for another request")
                return True, other.updates[update_id]
        request.updated = max(_now(), request.updated)
        request.status = status
        request.status_notes = fields.get("description") or request.status_notes
        update = {"update_id": update_id, "service_request_id": request_id, "status": status,
                  "updated_datetime": w3c(request.updated), "description": fields.get("description", ""),
                  "account_id": fields.get("account_id") or None,
                  "media_url": fields.get("media_url") or None}
        request.updates[update_id] = update
        return False, update

    def updates_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        self.notice()
        every = [u for r in self.requests.values() for u in r.updates.values()]
        return [u for u in every if start <= datetime.fromisoformat(u["updated_datetime"]) <= end]

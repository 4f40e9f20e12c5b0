"""The graph's object types other than ``Case``: channels, reference data, people, the viewer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import strawberry

from auth.masking import PartyView
from auth.rights import can_dispatch
from auth.viewer import Role
from auth.viewer import Viewer as DomainViewer
from casework import reference as refdata
from casework.model import ChannelHealth as DomainHealth
from casework.model import HealthStatus, QuarantinedRecord, RegionLevel
from connectors import UnifiedStatus
from resolvers import channels as channel_resolvers
from resolvers import reference as reference_resolvers
from resolvers.channels import ChannelRef
from resolvers.context import GraphContext
from resolvers.ids import decode_id_of, encode_global_id

__all__ = ["Capabilities", "Channel", "ChannelHealth", "Department", "EventCategory", "Location", "Node",
           "Party", "QuarantineRecord", "Region", "Viewer", "described"]

Info = strawberry.Info[GraphContext, None]
_F = TypeVar("_F", bound=Callable[..., Any])


def described(description: str) -> Callable[[_F], _F]:
    """``@strawberry.field(description=…)`` for resolvers, typed (strawberry's overload answers ``Any``)."""
    return cast(Callable[[_F], _F], strawberry.field(description=description))

strawberry.enum(UnifiedStatus, name="CaseStatus", description="统一办理状态 (the unified lifecycle)")
strawberry.enum(HealthStatus, name="HealthStatus", description="UP, DEGRADED or DOWN")
strawberry.enum(RegionLevel, name="RegionLevel", description="区 → 街道 → 社区 → 网格")


@strawberry.interface(description="An object with a global id, refetchable through Query.node.")
class Node:
    id: strawberry.ID


@strawberry.type(description="A point on the map (WGS-84).")
class Location:
    lat: float
    lng: float


@strawberry.type(description="What a channel's connector can do.")
class Capabilities:
    pull: bool
    push: bool
    batch_get: bool
    write_back: bool
    batch_limit: int


@strawberry.type(description="How a channel's sync is doing.")
class ChannelHealth:
    status: HealthStatus
    last_sync_at: datetime | None = strawberry.field(description="end of the last successful sync pass")
    lag_seconds: float | None = strawberry.field(description="seconds since the last successful sync")
    last_error: str | None
    breaker_open: bool

    @classmethod
    def of(cls, health: DomainHealth) -> ChannelHealth:
        return cls(status=health.status, last_sync_at=health.last_sync_at, lag_seconds=health.lag_seconds,
                   last_error=health.last_error, breaker_open=health.breaker_open)


@strawberry.federation.type(keys=["id"], description="A channel through which residents raise appeals.")
class Channel(Node):
    key: str
    name: str
    kind: str
    ref: strawberry.Private[ChannelRef]

    @classmethod
    def of(cls, ref: ChannelRef) -> Channel:
        return cls(id=strawberry.ID(encode_global_id("Channel", ref.key)), key=ref.key, name=ref.name,
                   kind=ref.kind, ref=ref)

    @strawberry.field
    def capabilities(self) -> Capabilities:
        caps = self.ref.capabilities
        return Capabilities(pull=caps.pull, push=caps.push, batch_get=caps.batch_get,
                            write_back=caps.write_back, batch_limit=caps.batch_limit)

    @strawberry.field
    async def health(self, info: Info) -> ChannelHealth:
        return ChannelHealth.of(await channel_resolvers.channel_health(info.context, self.ref))

    @described("cases taken in from this channel")
    async def case_count(self, info: Info) -> int:
        return int(await info.context.loaders.case_counts.load(self.key))

    @described("records of this channel that could not be taken in")
    async def quarantined(self, info: Info) -> int:
        return int(await info.context.loaders.quarantine_counts.load(self.key))

    @classmethod
    def resolve_reference(cls, info: Info, id: strawberry.ID) -> Channel | None:
        ref = channel_resolvers.get_channel(info.context, decode_id_of("Channel", id), strict=True)
        return None if ref is None else cls.of(ref)


@strawberry.type(description="行政区划: a district, street (街道), community (社区) or grid (网格).")
class Region(Node):
    code: str | None
    name: str
    level: RegionLevel
    region: strawberry.Private[refdata.Region]

    @classmethod
    def of(cls, region: refdata.Region) -> Region:
        return cls(id=strawberry.ID(encode_global_id("Region", region.id)), code=region.code,
                   name=region.name, level=region.level, region=region)

    @strawberry.field
    def parent(self, info: Info) -> Region | None:
        parent_id = self.region.parent_id
        parent = None if parent_id is None else info.context.resources.reference.regions.get(parent_id)
        return None if parent is None else Region.of(parent)

    @strawberry.field
    def children(self, info: Info) -> list[Region]:
        return [Region.of(child) for child in reference_resolvers.list_regions(info.context, self.region.id)]

    @described("approximate centre, when known")
    def location(self) -> Location | None:
        if self.region.lat is None or self.region.lng is None:
            return None
        return Location(lat=self.region.lat, lng=self.region.lng)


@strawberry.type(description="事件分类: one entry of the four-level event dictionary.")
class EventCategory(Node):
    code: str
    name: str
    level: int = strawberry.field(description="1 (one of the five top classes) to 4")
    category: strawberry.Private[refdata.Category]

    @classmethod
    def of(cls, category: refdata.Category) -> EventCategory:
        return cls(id=strawberry.ID(encode_global_id("EventCategory", category.id)), code=category.id,
                   name=category.name, level=category.level, category=category)

    @strawberry.field
    def parent(self, info: Info) -> EventCategory | None:
        parent_id = self.category.parent_id
        parent = None if parent_id is None else info.context.resources.reference.categories.get(parent_id)
        return None if parent is None else EventCategory.of(parent)

    @strawberry.field
    def children(self, info: Info) -> list[EventCategory]:
        children = reference_resolvers.list_categories(info.context, self.category.id)
        return [EventCategory.of(child) for child in children]

    @described("names from the top class down, e.g. 投诉建议/城市管理/市容环境/占道经营")
    def path(self, info: Info) -> list[str]:
        path = reference_resolvers.category_path(info.context, self.category.id)
        return [category.name for category in path]


@strawberry.type(description="A department cases are dispatched to (职能部门、街道办 …).")
class Department(Node):
    name: str
    short_name: str | None
    kind: str

    @classmethod
    def of(cls, department: refdata.Department) -> Department:
        return cls(id=strawberry.ID(encode_global_id("Department", department.id)), name=department.name,
                   short_name=department.short_name, kind=department.kind)


@strawberry.type(description="A person or organisation on a case; personal data is masked unless allowed.")
class Party:
    role: str | None
    name: str | None
    phone: str | None
    id_number: str | None = strawberry.field(description="居民身份证号 (masked)")
    is_organisation: bool
    withheld: bool = strawberry.field(description="identity withheld from this viewer (e.g. a petitioner)")

    @classmethod
    def of(cls, party: PartyView) -> Party:
        return cls(role=party.role, name=party.name, phone=party.phone, id_number=party.id_number,
                   is_organisation=party.is_organisation, withheld=party.withheld)


@strawberry.type(name="Viewer", description="Who is asking: the logged-in account and what its role allows.")
class Viewer:
    username: str
    display_name: str
    roles: list[str] = strawberry.field(description="district, street, community, department, "
                                                    "petition_staff, resident or service")
    authenticated: bool
    scopes: list[str] = strawberry.field(description="OAuth scopes of a department system's token")
    identity_verified: bool = strawberry.field(
        description="a verified phone or ID number is linked: myCases finds the viewer's appeals by it")
    can_dispatch: bool = strawberry.field(description="may dispatch cases (派单)")
    may_reveal: bool = strawberry.field(
        description="may ask for personal data in clear (reveal: true) on cases in its jurisdiction; audited")
    viewer: strawberry.Private[DomainViewer]

    @classmethod
    def of(cls, viewer: DomainViewer) -> Viewer:
        return cls(username=viewer.username, display_name=viewer.display_name,
                   roles=sorted(str(role) for role in viewer.roles), authenticated=viewer.authenticated,
                   scopes=sorted(viewer.scopes), identity_verified=bool(viewer.identity_hashes),
                   can_dispatch=can_dispatch(viewer), may_reveal=bool(viewer.roles & _REVEALERS),
                   viewer=viewer)

    @described("the regions of the viewer's jurisdiction (a street or community officer's)")
    def regions(self, info: Info) -> list[Region]:
        regions = info.context.resources.reference.regions
        return [Region.of(regions[r]) for r in sorted(self.viewer.region_ids) if r in regions]

    @described("the viewer's department (a department's staff or system)")
    def department(self, info: Info) -> Department | None:
        department_id = self.viewer.department_id
        departments = info.context.resources.reference.departments
        found = None if department_id is None else departments.get(department_id)
        return None if found is None else Department.of(found)


_REVEALERS = frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY, Role.DEPARTMENT, Role.PETITION_STAFF})


@strawberry.type(description="A record a channel sent that could not be taken in, and why.")
class QuarantineRecord:
    channel: str
    source_id: str | None
    reason: str
    raw: str = strawberry.field(description="the record as sent (truncated)")
    at: datetime

    @classmethod
    def of(cls, record: QuarantinedRecord) -> QuarantineRecord:
        return cls(channel=record.channel, source_id=record.source_id, reason=record.reason, raw=record.raw,
                   at=record.at)

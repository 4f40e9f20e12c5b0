"""``Subscription.caseEvents``: the event log, live and resumable, as the graph serves it."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import strawberry
from strawberry.types import Info

from casework import events as log
from resolvers import cases as case_resolvers
from resolvers import events as event_resolvers
from resolvers.ids import decode_id_of, encode_global_id
from schema.cases import Case
from schema.types import described

if TYPE_CHECKING:
    from casework.events import Event
    from casework.model import StoredCase
    from resolvers.context import GraphContext

__all__ = ["CaseEvent", "CaseEventFilter", "CaseEventType", "Subscription"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _subscription(description: str) -> Callable[[_F], _F]:
    """``@strawberry.subscription(description=…)``, typed (strawberry's overload answers ``Any``)."""
    return cast(Callable[[_F], _F], strawberry.subscription(description=description))


@strawberry.enum(description="What changed: the event log's type (ASSIGNMENT_SIGNED is assignment.signed)")
class CaseEventType(enum.Enum):
    CASE_CREATED = log.CASE_CREATED
    CASE_UPDATED = log.CASE_UPDATED
    CLUSTER_CREATED = log.CLUSTER_CREATED
    CLUSTER_UPDATED = log.CLUSTER_UPDATED
    CLUSTER_MERGED = log.CLUSTER_MERGED
    CLUSTER_SPLIT = log.CLUSTER_SPLIT
    CLUSTER_ESCALATED = log.CLUSTER_ESCALATED
    ASSIGNMENT_DISPATCHED = log.ASSIGNMENT_DISPATCHED
    ASSIGNMENT_SIGNED = log.ASSIGNMENT_SIGNED
    ASSIGNMENT_PROGRESSED = log.ASSIGNMENT_PROGRESSED
    ASSIGNMENT_RETURNED = log.ASSIGNMENT_RETURNED
    ASSIGNMENT_RESOLVED = log.ASSIGNMENT_RESOLVED
    WHISTLE_ISSUED = log.WHISTLE_ISSUED
    WHISTLE_REPORTED = log.WHISTLE_REPORTED
    CARD_ISSUED = log.CARD_ISSUED
    EVALUATION_ADDED = log.EVALUATION_ADDED
    WRITEBACK_DELIVERED = log.WRITEBACK_DELIVERED
    WRITEBACK_FAILED = log.WRITEBACK_FAILED


@strawberry.input(description="Which events to receive; every given condition must hold, a list matches any.")
class CaseEventFilter:
    department_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Department ids: events of assignments or summons to one of them")
    region_id: strawberry.ID | None = strawberry.field(
        default=None, description="a Region id; includes everything beneath it")
    channels: list[str] | None = None
    types: list[CaseEventType] | None = None

    def to_spec(self, ctx: GraphContext) -> event_resolvers.EventFilterSpec:
        region_ids = [] if self.region_id is None else [decode_id_of("Region", str(self.region_id))]
        return event_resolvers.filter_spec(
            department_ids=[decode_id_of("Department", str(d)) for d in self.department_ids or ()],
            region_ids=region_ids, channels=self.channels or (),
            types=[t.value for t in self.types or ()])


@strawberry.type(description="A name and value of an event's own detail (status, assignment id …)")
class EventDetail:
    name: str
    value: str


@strawberry.type(description="One change, as the event log recorded it")
class CaseEvent:
    cursor: str = strawberry.field(description="pass it as `after` (or Last-Event-ID) to resume after it")
    type: CaseEventType
    at: str = strawberry.field(description="when the change happened (ISO-8601)")
    case_ids: list[strawberry.ID] = strawberry.field(
        description="the cases concerned: a case's own change, or a case joining a cluster (detail "
                    "`change` = case.clustered, `case_count` = the cluster's size then), names that case; "
                    "any other change of a cluster names its every case")
    cluster_id: str | None
    department_ids: list[strawberry.ID]
    region_ids: list[strawberry.ID] = strawberry.field(description="the most specific regions concerned")
    channels: list[str]
    status: str | None = strawberry.field(description="the status after the change, when it has one")
    detail: list[EventDetail]

    @described("the first of caseIds")
    def case_id(self) -> strawberry.ID | None:
        return self.case_ids[0] if self.case_ids else None

    @described("the (first) case concerned, as it is now; null when gone or not visible")
    async def case(self, info: Info) -> Case | None:
        found = await self._case(info)
        return None if found is None else Case.of(found)

    @described("the title of the (first) case concerned, as it is now")
    async def title(self, info: Info) -> str | None:
        found = await self._case(info)
        return None if found is None else found.title

    async def _case(self, info: Info) -> StoredCase | None:
        if not self.case_ids:
            return None
        return await case_resolvers.get_case(info.context, decode_id_of("Case", str(self.case_ids[0])))

    @classmethod
    def of(cls, event: Event) -> CaseEvent:
        detail = event.detail()
        return cls(cursor=event.cursor, type=CaseEventType(event.type), at=event.at,
                   case_ids=[strawberry.ID(encode_global_id("Case", key)) for key in event.cases],
                   cluster_id=event.cluster,
                   department_ids=[strawberry.ID(encode_global_id("Department", d))
                                   for d in event.departments],
                   region_ids=[strawberry.ID(encode_global_id("Region", r)) for r in event.regions],
                   channels=list(event.channels), status=detail.get("status"),
                   detail=[EventDetail(name=k, value=v) for k, v in sorted(detail.items())])


@strawberry.type
class Subscription:
    @_subscription(
        "Changes as they happen, filtered and checked against your rights event by event. With `after` "
        "(a cursor you received) the events you missed are replayed first, then live ones follow, with "
        "no gap and no duplicate; a cursor older than the retention fails with CURSOR_EXPIRED.")
    async def case_events(self, info: Info, filter: CaseEventFilter | None = None,
                          after: str | None = None) -> AsyncGenerator[CaseEvent, None]:
        ctx: GraphContext = info.context
        spec = event_resolvers.EventFilterSpec() if filter is None else filter.to_spec(ctx)
        events = await event_resolvers.follow_case_events(ctx, spec, after)
        async for event in events:
            shared = event.views.get("graphql")
            if shared is None:  # built once per event, whichever of its subscribers comes first
                shared = event.views["graphql"] = CaseEvent.of(event)
            yield shared

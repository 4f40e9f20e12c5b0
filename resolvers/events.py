"""``caseEvents``: the event log as a subscription, filtered and rights-checked event by event.

Transports (graphql-transport-ws, graphql-sse) only carry what this yields. Each subscription is a
:class:`EventGate` on the process's one :class:`~casework.eventfeed.EventFeed`: the gate is the
``accept`` the feed calls for every event, so filtering and rights cost no queueing for events a
subscriber may not see. Rights are those of the viewer *now*: an event arriving after the viewer's
token expired ends the subscription with ``UNAUTHENTICATED`` (the client logs in again and resumes
from its last cursor, losing nothing).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from auth.rights import PETITION_CHANNELS, CaseFacts, Scope, case_scope
from auth.viewer import Viewer
from casework.events import EVENT_TYPES, BadCursor, CursorExpired, Event
from resolvers.errors import BadUserInput, GraphError, Unauthenticated
from resolvers.loaders import Loaders

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["CursorTooOld", "EventFilterSpec", "EventGate", "event_facts", "follow_case_events"]


class CursorTooOld(GraphError):
    """The cursor is older than the log's retention: events after it are gone."""

    code = CursorExpired.code


class EventsUnavailable(GraphError):
    code = "SERVICE_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class EventFilterSpec:
    """A ``CaseEventFilter`` with its ids decoded; empty means "any"."""

    department_ids: frozenset[str] = frozenset()
    region_ids: frozenset[str] = frozenset()     # an event matches when it lies in or beneath one
    channels: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def matches(self, event: Event) -> bool:
        return ((not self.types or event.type in self.types)
                and (not self.channels or not self.channels.isdisjoint(event.channels))
                and (not self.department_ids or not self.department_ids.isdisjoint(event.departments))
                and (not self.region_ids or not self.region_ids.isdisjoint(event.within)))


def event_facts(event: Event) -> CaseFacts:
    """What the rights policy needs to know about the case(s) an event concerns."""
    return CaseFacts(channel=event.channels[0] if event.channels else "", region_ids=event.within,
                     department_ids=frozenset(event.departments), party_hashes=frozenset(event.parties),
                     is_petition=not PETITION_CHANNELS.isdisjoint(event.channels),
                     respondent_department_ids=frozenset(event.respondents))


@dataclass(slots=True)
class EventGate:
    """One subscriber's filter and rights, applied to each event by the feed."""

    viewer: Viewer
    spec: EventFilterSpec
    scope: Scope = field(init=False)
    expires_at: float | None = field(init=False)
    expired: bool = False

    def __post_init__(self) -> None:
        self.scope = case_scope(self.viewer)
        exp = self.viewer.claims.get("exp")
        self.expires_at = float(exp) if isinstance(exp, (int, float)) else None

    def __call__(self, event: Event) -> bool:
        if not self.spec.matches(event):
            return False
        if self.expires_at is not None and time.time() >= self.expires_at:
            self.expired = True
            return True  # let it through to end the subscription; follow() never yields it
        return self.scope.allows(event_facts(event))


def filter_spec(*, department_ids: Collection[str] = (), region_ids: Collection[str] = (),
                channels: Collection[str] = (), types: Collection[str] = ()) -> EventFilterSpec:
    unknown = set(types) - EVENT_TYPES
    if unknown:
        raise BadUserInput(f"unknown event types {sorted(unknown)}", argument="filter.types")
    return EventFilterSpec(frozenset(department_ids), frozenset(region_ids), frozenset(channels),
                           frozenset(types))


async def follow_case_events(ctx: GraphContext, spec: EventFilterSpec,
                             after: str | None) -> AsyncIterator[Event]:
    """Validate, then stream: an expired or bad cursor fails before the stream starts.

    ``ctx.resume_after`` (a Server-Sent Events client's ``Last-Event-ID``) wins over ``after``.
    """
    viewer = ctx.viewer
    if not viewer.roles:
        raise Unauthenticated("log in first: send Authorization: Bearer <token> in connection_init")
    feed = ctx.resources.feed
    if feed is None:
        raise EventsUnavailable("live events are not running on this gateway")
    after = ctx.resume_after or after
    if after:
        await _check_cursor(ctx, after)
    gate = EventGate(viewer, spec)
    return _stream(ctx, feed.follow(after or None, gate), gate)


async def _check_cursor(ctx: GraphContext, cursor: str) -> None:
    try:
        await ctx.resources.events.read_after(cursor, count=1)
    except CursorExpired as exc:
        raise CursorTooOld(str(exc), cursor=cursor, trimmedThrough=exc.trimmed_through) from None
    except BadCursor as exc:
        raise BadUserInput(str(exc), argument="after") from None


async def _stream(ctx: GraphContext, events: AsyncIterator[Event], gate: EventGate) -> AsyncIterator[Event]:
    try:
        async for event in events:
            if gate.expired:
                raise Unauthenticated("the token expired: log in again and resume from your last cursor")
            # A subscription's context lives as long as its connection: fresh DataLoaders per event, so
            # `case` is read as it is now and no cache grows with every event delivered.
            ctx.loaders = Loaders(ctx.resources)
            yield event
    except CursorExpired as exc:  # retention overtook a subscriber that fell far behind
        raise CursorTooOld(str(exc), cursor=exc.cursor, trimmedThrough=exc.trimmed_through) from None
    finally:
        await events.aclose()  # type: ignore[attr-defined]


"""The GraphQL context: shared resources from the app, per-request DataLoaders, and the viewer.

The gateway builds one :class:`Resources` in its lifespan and one :class:`GraphContext` per
request (:func:`build_context`); resolvers read everything they need from the context, never
from globals or the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auth.viewer import Viewer
from resolvers.loaders import Loaders

if TYPE_CHECKING:
    from auth.audit import AuditLog
    from auth.context import Authenticator
    from auth.identity import IdentityHasher
    from auth.replay import ReplayGuard
    from casework.channels import ChannelSet
    from casework.clusters import ClusterStore
    from casework.dispatch import Dispatcher
    from casework.eventfeed import EventFeed
    from casework.events import EventLog
    from casework.outbox import Outbox
    from casework.reference import Reference
    from casework.store import CaseStore
    from casework.whistles import WhistleBook

__all__ = ["GraphContext", "Limits", "Resources", "UpstreamObserver", "build_context"]

UpstreamObserver = Callable[[str, str], None]
"""Called as ``observe(channel, outcome)`` after every upstream call a resolver makes (for metrics)."""


def _ignore(channel: str, outcome: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Limits:
    """The graph's limits, from the settings."""

    default_page_size: int = 20
    max_page_size: int = 100
    source_timeout: float = 5.0       # seconds one channel's Case.source fetch may take
    source_cache_ttl: int = 3600      # seconds a fetched source record stays cached


@dataclass(frozen=True, slots=True)
class Resources:
    """What every request shares: built once in the app's lifespan.

    ``authenticator`` turns a bearer token (HTTP header or a graphql-transport-ws
    ``connection_init`` payload) into a :class:`~auth.viewer.Viewer`; ``audit`` is the audit log
    (write through :func:`resolvers.rights.audit_write` / :func:`resolvers.rights.audit_read`);
    ``hasher`` makes the keyed identity hashes a resident's appeals are matched by; ``replay``
    rejects a pushed (webhook) request seen before by any replica. They are ``None`` only in unit
    tests that build resources by hand.
    """

    store: CaseStore
    reference: Reference
    events: EventLog
    channels: ChannelSet
    limits: Limits = field(default_factory=Limits)
    observe_upstream: UpstreamObserver = _ignore
    authenticator: Authenticator | None = None
    audit: AuditLog | None = None
    hasher: IdentityHasher | None = None
    replay: ReplayGuard | None = None
    clusters: ClusterStore | None = None   # 民声云 clusters (dispatchView); None in tools without dedup
    feed: EventFeed | None = None  # the process's one live reader of the event log (subscriptions)
    dispatcher: Dispatcher | None = None   # dispatch, deadlines, statistics (None in unit tests)
    outbox: Outbox | None = None           # write-backs to the channels
    whistles: WhistleBook | None = None    # 吹哨单


@dataclass(slots=True)
class GraphContext:
    """One request's context: ``info.context`` in every resolver."""

    resources: Resources
    viewer: Viewer
    loaders: Loaders
    request: Any = None  # the HTTP request or WebSocket, for the transport's own needs
    connection_params: dict[str, Any] | None = None  # a WebSocket's connection_init payload
    resume_after: str | None = None  # an event-stream client's Last-Event-ID (wins over `after`)


def build_context(resources: Resources, viewer: Viewer, request: Any = None) -> GraphContext:
    """A fresh context with fresh DataLoaders (their caches live for this request only)."""
    return GraphContext(resources=resources, viewer=viewer, loaders=Loaders(resources), request=request)

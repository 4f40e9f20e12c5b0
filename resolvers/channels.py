"""Channels as the graph shows them: configuration, capabilities, health and counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from casework.model import ChannelHealth, HealthStatus, QuarantinedRecord
from connectors import Capabilities
from resolvers.errors import BadUserInput
from resolvers.rights import require_operator

if TYPE_CHECKING:
    from casework.channels import ChannelRuntime
    from resolvers.context import GraphContext

__all__ = ["ChannelRef", "channel_health", "get_channel", "list_channels", "list_quarantine"]

NOT_CONFIGURED = "not configured in this deployment"
MAX_QUARANTINE_PAGE = 500


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel of this deployment, or the bare key of one whose cases remain but that is gone."""

    key: str
    name: str
    kind: str
    connector: str | None
    capabilities: Capabilities
    runtime: ChannelRuntime | None


def _ref(runtime: ChannelRuntime) -> ChannelRef:
    info = runtime.connector.describe()
    return ChannelRef(key=runtime.config.key, name=info.name, kind=info.kind,
                      connector=runtime.config.connector, capabilities=info.capabilities, runtime=runtime)


def list_channels(ctx: GraphContext) -> list[ChannelRef]:
    """Every configured channel, in the channels file's order."""
    return [_ref(runtime) for runtime in ctx.resources.channels.values()]


def get_channel(ctx: GraphContext, key: str, *, strict: bool = False) -> ChannelRef | None:
    """The channel ``key``; a removed channel still answers (as unconfigured) unless ``strict``."""
    runtime = ctx.resources.channels.get(key)
    if runtime is not None:
        return _ref(runtime)
    if strict:
        return None
    return ChannelRef(key=key, name=key, kind="unconfigured", connector=None,
                      capabilities=Capabilities(pull=False, batch_get=False), runtime=None)


async def channel_health(ctx: GraphContext, channel: ChannelRef) -> ChannelHealth:
    cases = await ctx.loaders.case_counts.load(channel.key)
    quarantined = await ctx.loaders.quarantine_counts.load(channel.key)
    if channel.runtime is None:
        return ChannelHealth(status=HealthStatus.DOWN, last_sync_at=None, lag_seconds=None,
                             last_error=NOT_CONFIGURED, cases=cases, quarantined=quarantined,
                             breaker_open=False)
    return channel.runtime.health(cases, quarantined)


async def list_quarantine(ctx: GraphContext, channel: str | None, first: int) -> list[QuarantinedRecord]:
    """Records that could not be taken in, newest first, for operators."""
    require_operator(ctx.viewer)
    if first < 0 or first > MAX_QUARANTINE_PAGE:
        raise BadUserInput(f"first must be between 0 and {MAX_QUARANTINE_PAGE}", argument="first")
    return list(await ctx.resources.store.list_quarantine(channel, first))

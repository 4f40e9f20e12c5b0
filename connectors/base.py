"""The connector contract: what an integrator implements to bring a channel into the graph.

A connector is mostly declarations — :attr:`Connector.info`, a :attr:`Connector.source_model`
for the live detail it serves — plus a few async hooks. The gateway builds one instance per
configured channel (an entry of the channels file), enters it as an async context manager in
its lifespan, and calls:

* :meth:`Connector.changes` from the channel's sync loop, persisting the cursor after each page;
* :meth:`Connector.get_many` from per-request DataLoaders, for ``Case.source``;
* :meth:`Connector.parse_webhook` for requests the channel pushes to ``/hooks/<key>``;
* :meth:`Connector.write_back` from the outbox.

Everything raised on purpose is a :class:`connectors.errors.ConnectorError`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict

from connectors.errors import WebhookRejected
from connectors.records import ChangePage, Deadline, WriteBackAction, WriteBackResult

__all__ = ["Capabilities", "ChannelConfig", "Connector", "ConnectorInfo", "SourceRecord"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do. ``batch_limit`` is the most ids one ``get_many`` call may take."""

    pull: bool = True
    push: bool = False
    batch_get: bool = True
    write_back: bool = False
    batch_limit: int = 50


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """What :meth:`Connector.describe` answers."""

    key: str
    name: str
    kind: str
    capabilities: Capabilities


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One entry of the channels file, as the gateway hands it to a connector.

    Args:
        key: the channel's key in the graph (``Case.channel``), unique in the deployment.
        connector: the entry-point name of the connector class.
        name: display name, e.g. ``12345热线``.
        base_url: where the channel system answers.
        credentials: the gateway's own service credentials for this channel (never a user's token).
        options: connector-specific options.
        timeout: seconds for one upstream request.
        poll_interval: seconds between two sync passes.
    """

    key: str
    connector: str
    name: str
    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 10.0
    poll_interval: float = 5.0


class SourceRecord(BaseModel):
    """Base of the live detail model a connector serves for ``Case.source``.

    Subclass it with the channel's own fields (plain scalars, lists of scalars, nested
    ``BaseModel`` s); the gateway turns the subclass into a GraphQL type of its own.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    source_id: str


class Connector(abc.ABC):
    """Base class of every connector. Subclasses set :attr:`info` and :attr:`source_model`.

    Args:
        config: the channel's entry of the channels file.
        transport: an ``httpx`` transport to use instead of the network (tests swap it).
    """

    info: ClassVar[ConnectorInfo]
    source_model: ClassVar[type[SourceRecord]] = SourceRecord

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def build_client(self) -> httpx.AsyncClient:
        """Build the HTTP client for this channel: base URL, timeout, auth flow. Override to add auth."""
        return httpx.AsyncClient(
            base_url=self.config.base_url,
            timeout=httpx.Timeout(self.config.timeout),
            transport=self._transport,
            headers={"User-Agent": "minsheng-gateway"},
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The channel's HTTP client; available inside ``async with connector``."""
        if self._client is None:
            raise RuntimeError(f"connector {self.config.key!r} used outside 'async with'")
        return self._client

    async def __aenter__(self) -> Self:
        self._client = self.build_client()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the contract ----------------------------------------------------------------------

    def describe(self) -> ConnectorInfo:
        """Key, display name, kind and capabilities of this channel.

        Returns:
            The class's :attr:`info`, with the configured key and name.
        """
        return ConnectorInfo(key=self.config.key, name=self.config.name or self.info.name,
                             kind=self.info.kind, capabilities=self.info.capabilities)

    def deadlines(self) -> tuple[Deadline, ...]:
        """The channel's own promises to residents (sign within …, feedback within …).

        Returns:
            The promises, empty when the channel makes none (the default).
        """
        return ()

    @abc.abstractmethod
    def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        """Yield pages of changed tickets after ``cursor`` (``None``: from the beginning).

        Each page carries its normalised records, the records that failed to normalise (as
        :class:`~connectors.errors.BadRecord`) and the cursor to resume after that page.

        Raises:
            UpstreamUnavailable: the channel could not be reached (the sync loop retries).
            RateLimited: the channel throttled us.
            UpstreamRejected: the channel refused our request or credentials.
        """

    @abc.abstractmethod
    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        """Fetch live detail for at most ``info.capabilities.batch_limit`` ids in one call.

        Returns:
            A mapping from every asked id to its record, or ``None`` when the channel has no
            such ticket.

        Raises:
            UpstreamUnavailable, RateLimited, UpstreamRejected: as for :meth:`changes`.
        """

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                            now: datetime | None = None) -> ChangePage:
        """Verify a pushed request and return its records.

        Raises:
            WebhookRejected: the signature, timestamp or nonce did not check out, or the
                channel does not push.
        """
        raise WebhookRejected(f"channel {self.config.key!r} does not push")

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        """Record a state change on the source system; idempotent by ``action.action_id``.

        Raises:
            UpstreamUnavailable, RateLimited: retry later (the outbox does).
            UpstreamRejected: the channel refused the action.
        """
        raise NotImplementedError(f"channel {self.config.key!r} does not accept write-back")

"""The dispatch step's shared parts and background workers, built in the app's lifespan.

:func:`dispatching` builds the :class:`~casework.dispatch.Dispatcher` (routing rules and deadline
policies from their data files), the write-back :class:`~casework.outbox.Outbox`, the whistle book,
and runs three workers until the gateway stops: the outbox (delivers write-backs to the channels),
the router (counts new cases into the statistics and dispatches clusters whose rule is automatic) and
the supervisor (announces yellow and red cards as deadlines near and pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from casework.access import link_department_in
from casework.channels import ChannelSet
from casework.clusterbook import ClusterBook, SingleCaseClusters
from casework.deadlines import DeadlinePolicies
from casework.dispatch import Dispatcher
from casework.events import EventLog
from casework.outbox import Outbox
from casework.router import Router
from casework.routing import RoutingRules
from casework.store import CaseStore
from casework.supervision import Supervisor
from casework.whistles import WhistleBook
from gateway.settings import Settings

__all__ = ["DispatchParts", "dispatching", "stop_tasks"]

log = logging.getLogger(__name__)

STOP_PATIENCE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class DispatchParts:
    dispatcher: Dispatcher
    outbox: Outbox
    whistles: WhistleBook


@contextlib.asynccontextmanager
async def dispatching(settings: Settings, redis: Any, store: CaseStore, events: EventLog,
                      channels: ChannelSet,
                      clusters: ClusterBook | None = None) -> AsyncIterator[DispatchParts]:
    """The dispatch parts, with the outbox and router running while the context is open."""
    reference = store.reference
    writable = frozenset(k for k, r in channels.items() if r.connector.describe().capabilities.write_back)
    dispatcher = Dispatcher(redis, store, clusters or SingleCaseClusters(store), RoutingRules.load(reference),
                            DeadlinePolicies.load(), events, writable=writable)
    outbox = Outbox(redis, channels, events)
    whistles = WhistleBook(redis, reference, events, link=link_department_in)
    router = Router(dispatcher, consumer=f"{socket.gethostname()}-{os.getpid()}",
                    auto_dispatch=settings.auto_dispatch)
    tasks = [asyncio.create_task(outbox.run(), name="minsheng-outbox"),
             asyncio.create_task(router.run(), name="minsheng-router"),
             asyncio.create_task(Supervisor(dispatcher).run(), name="minsheng-supervision")]
    try:
        yield DispatchParts(dispatcher, outbox, whistles)
    finally:
        await stop_tasks(tasks)


async def stop_tasks(tasks: list[asyncio.Task[None]], patience: float = STOP_PATIENCE_SECONDS) -> None:
    """Cancel background workers and wait for them, but never longer than ``patience`` seconds.

    A worker that swallows its cancellation (a library that catches ``CancelledError``) must not keep
    the gateway from stopping: it is named in a warning and left to die with the event loop.
    """
    for task in tasks:
        task.cancel()
    done, stuck = await asyncio.wait(tasks, timeout=patience)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
    for task in stuck:
        log.warning("%s did not stop within %.0fs of being cancelled; leaving it", task.get_name(), patience)

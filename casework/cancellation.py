"""Stopping background loops on Python 3.11, where a cancellation can be lost on the way.

Python 3.11's :func:`asyncio.wait_for` returns the awaited result and drops the cancellation when
the task is cancelled just as that result arrives (3.12 rewrote ``wait_for`` on
:func:`asyncio.timeout`). redis-py 8 wraps the write of every command in ``wait_for`` (its default
``socket_timeout`` is 5 s), so a worker cancelled while it sends a command carries on as if nothing
happened: a ``while True`` loop then never stops, and a shutdown waits out its patience. The task
still counts the cancellation (:meth:`asyncio.Task.cancelling`), so a loop that checks once a round
stops where it would have.
"""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelled"]


def raise_if_cancelled() -> None:
    """Raise :class:`asyncio.CancelledError` if this task was cancelled but is still running."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop running: nothing to cancel
        return
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

"""Serving an author's sandbox for the kit: real uvicorn in a thread, and a transport the kit controls."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

__all__ = ["KitTransport", "serve_app"]


@contextlib.contextmanager
def serve_app(app: Any, *, port: int | None = None, **options: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL.

    Args:
        app: the ASGI app.
        port: the port (default: a free one).
        options: more ``uvicorn.Config`` options (``lifespan``, ``ws`` …).

    Warns (``RuntimeWarning``) when the server has not stopped 15 seconds after the block ends: its
    thread would otherwise keep running, unseen, beside every later test.
    """
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    # a stream still open at the end (an SSE subscription, a request stuck on a slow channel) must not
    # hold the shutdown: uvicorn waits for open requests forever unless told otherwise
    options.setdefault("timeout_graceful_shutdown", 5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, name=f"kit-uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the upstream app did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():
            warnings.warn(f"the app served on port {port} did not stop within 15s; its thread lives on",
                          RuntimeWarning, stacklevel=3)


class KitTransport(httpx.AsyncHTTPTransport):
    """The real network transport, counting requests and answering with a fault when one is set.

    ``fault`` is ``None`` (pass through), an HTTP status (answered without reaching the upstream;
    429 carries ``Retry-After: retry_after``), or ``"timeout"`` (raises :class:`httpx.ReadTimeout`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.fault: int | str | None = None
        self.retry_after = 120

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fault == "timeout":
            raise httpx.ReadTimeout("kit fault: timed out", request=request)
        if isinstance(self.fault, int):
            headers = {"Retry-After": str(self.retry_after)} if self.fault == 429 else {}
            return httpx.Response(self.fault, headers=headers, content=b"kit fault", request=request)
        return await super().handle_async_request(request)

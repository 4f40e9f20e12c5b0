"""Real servers for the tests: uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from connectors.testing import serve_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, *, port: int | None = None, lifespan: str = "auto") -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    with serve_app(app, port=port or free_port(), lifespan=lifespan,
                   ws="websockets-sansio" if _has_sansio() else "auto") as url:
        yield url


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True

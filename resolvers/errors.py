"""Errors the graph answers with on purpose, each carrying its ``extensions.code``.

The tree, with when each is raised::

    GraphError                  base: a message meant for the client and a code
    ├── BadUserInput            BAD_USER_INPUT: a malformed id, cursor, page size or filter
    ├── NotFound                NOT_FOUND: a well-formed id of an object that does not exist (where null
    │                           would be ambiguous)
    ├── Forbidden               FORBIDDEN: the viewer may not see or do this
    ├── Unauthenticated         UNAUTHENTICATED: a login is needed
    ├── Conflict                CONFLICT: the request contradicts the current state (split a lone case)
    └── UpstreamFailure         UPSTREAM_UNAVAILABLE: a channel system did not answer in time or at all
        └── UpstreamRateLimited RATE_LIMITED: a channel system throttled us (``retryAfter`` in seconds)

Anything else raised in a resolver is a bug: the client sees ``INTERNAL_SERVER_ERROR`` and
"Internal server error", and the trace goes to the server's log only.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["BadUserInput", "Conflict", "Forbidden", "GraphError", "NotFound", "Unauthenticated",
           "UpstreamFailure", "UpstreamRateLimited"]


class GraphError(Exception):
    """Base of the errors the client is meant to read; ``extensions`` adds to the error's extensions."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        self.message = message
        self.extensions = extensions
        super().__init__(message)


class BadUserInput(GraphError):
    code = "BAD_USER_INPUT"


class NotFound(GraphError):
    code = "NOT_FOUND"


class Forbidden(GraphError):
    code = "FORBIDDEN"


class Conflict(GraphError):
    code = "CONFLICT"


class Unauthenticated(GraphError):
    code = "UNAUTHENTICATED"


class UpstreamFailure(GraphError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamRateLimited(UpstreamFailure):
    code = "RATE_LIMITED"

"""Every error in an answer carries ``extensions.code``; unexpected ones are masked.

:class:`ErrorCodes` rewrites the errors of each result once, after the operation:

* errors raised on purpose (:class:`resolvers.errors.GraphError`) keep their message and code;
* connector errors that escaped a resolver become ``UPSTREAM_UNAVAILABLE`` / ``RATE_LIMITED``;
* the store (Redis) unreachable, restarting or still loading its data after redis-py's own retries:
  ``SERVICE_UNAVAILABLE`` — a condition to retry shortly, not a bug, so a warning without a trace;
* request errors (no path: syntax, validation, variables) get ``GRAPHQL_PARSE_FAILED``,
  ``GRAPHQL_VALIDATION_FAILED``, ``BAD_USER_INPUT`` or ``QUERY_TOO_COMPLEX``;
* anything else is a bug: "Internal server error" with ``INTERNAL_SERVER_ERROR``, and the trace is
  logged (:func:`log_errors`, called by the schema before the rewrite) — never sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError
from strawberry.extensions import SchemaExtension

from connectors import ConnectorError, RateLimited, UpstreamError
from resolvers.errors import GraphError

__all__ = ["ErrorCodes", "classify", "log_errors"]

log = logging.getLogger("minsheng.graphql")

INTERNAL_MESSAGE = "Internal server error"
STORE_MESSAGE = "the gateway's store is unavailable; try again shortly"
# BusyLoadingError (a restarted Redis replaying its AOF) is a ConnectionError in redis-py
_STORE_DOWN = (StoreConnectionError, StoreTimeoutError)
_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than")
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


def _is_request_error(error: GraphQLError) -> bool:
    return not error.path


def _request_code(message: str) -> str:
    if _TOO_COMPLEX.search(message):
        return "QUERY_TOO_COMPLEX"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """``(code, message, extra extensions)`` for one error."""
    original = error.original_error
    if isinstance(original, GraphError):
        return original.code, original.message, dict(original.extensions)
    if isinstance(original, RateLimited):
        return "RATE_LIMITED", "a channel system is throttling requests", {"retryAfter": original.retry_after}
    if isinstance(original, (UpstreamError, TimeoutError)):
        return "UPSTREAM_UNAVAILABLE", "a channel system is unavailable", {}
    if isinstance(original, _STORE_DOWN):
        return "SERVICE_UNAVAILABLE", STORE_MESSAGE, {}
    if original is None and isinstance(error.extensions, dict) and error.extensions.get("code"):
        extensions = dict(error.extensions)
        return str(extensions.pop("code")), error.message, extensions
    if _is_request_error(error):
        return _request_code(error.message), error.message, {}
    return "INTERNAL_SERVER_ERROR", INTERNAL_MESSAGE, {}


def _expected(error: GraphQLError) -> bool:
    original = error.original_error
    return (original is None or _is_request_error(error)
            or isinstance(original, (GraphError, ConnectorError, TimeoutError, GraphQLError)))


def log_errors(errors: Sequence[GraphQLError]) -> None:
    """Server-side record of a result's errors: traces for the unexpected ones only."""
    for error in errors:
        if isinstance(error.original_error, _STORE_DOWN):
            log.warning("store unavailable at %s: %s", error.path, error.original_error)
        elif _expected(error):
            log.debug("graphql error at %s: %s", error.path, error.message)
        else:
            log.error("unexpected error at %s", error.path, exc_info=error.original_error)


class ErrorCodes(SchemaExtension):
    """Gives every error of the result an ``extensions.code`` and masks unexpected ones.

    Args:
        hide_suggestions: drop "Did you mean …" from messages (production: the schema is not public).
    """

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self.rewrite(error) for error in errors]

    def on_stream_result(self, result: Any) -> None:  # type: ignore[override]
        """Each result of a subscription (one per event) gets the same rewrite as an operation's."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self.rewrite(error) for error in errors]

    def rewrite(self, error: GraphQLError) -> GraphQLError:
        code, message, extra = classify(error)
        if self.hide_suggestions and _is_request_error(error):
            message = _SUGGESTION.sub("", message)
        return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, original_error=error.original_error,
                            extensions={**extra, "code": code})

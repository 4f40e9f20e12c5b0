"""A small GraphQL-over-HTTP client for the legal-aid system: bearer auth as an ``httpx.Auth`` flow, one
POST per operation, and GraphQL ``errors`` translated into the connector error tree — once, here.

``errors[].extensions.code`` decides the error raised when an operation has no data:

====================================================  ==========================================
code                                                  raised
====================================================  ==========================================
UNAUTHENTICATED, FORBIDDEN                            AuthenticationFailed
RATE_LIMITED                                          RateLimited (``extensions.retryAfter`` s)
LIMIT_EXCEEDED, BAD_USER_INPUT, GRAPHQL_PARSE_FAILED,  UpstreamRejected (our request is wrong: no
GRAPHQL_VALIDATION_FAILED, BAD_REQUEST                retry as is)
INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE, none,     UpstreamUnavailable (the system failed:
anything else                                         retry later)
====================================================  ==========================================

Errors next to data (a field the system could not render) are handed back with their ``path`` so the
caller can quarantine just the node they belong to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.auth import BearerToken
from connectors.errors import (
    AuthenticationFailed,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from connectors.http import send

__all__ = ["BearerToken", "FieldError", "GraphQLClient", "GraphQLResult", "error_for"]

AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
RATE_CODES = frozenset({"RATE_LIMITED"})
REJECTED_CODES = frozenset({"LIMIT_EXCEEDED", "BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED",
                            "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a GraphQL answer's ``errors``."""

    message: str
    path: tuple[str | int, ...] = ()
    code: str | None = None
    extensions: Mapping[str, Any] | None = None

    @classmethod
    def read(cls, raw: object) -> FieldError:
        if not isinstance(raw, Mapping):
            return cls(message=str(raw)[:500])
        extensions = raw.get("extensions") if isinstance(raw.get("extensions"), Mapping) else None
        given = raw.get("path")
        path: list[Any] = given if isinstance(given, list) else []
        code = None if extensions is None else extensions.get("code")
        return cls(message=str(raw.get("message", ""))[:500],
                   path=tuple(p for p in path if isinstance(p, (str, int))),
                   code=str(code) if code is not None else None, extensions=extensions)

    def under(self, *prefix: str | int) -> bool:
        """Whether this error is about ``prefix`` or something inside it."""
        return self.path[:len(prefix)] == prefix


@dataclass(frozen=True, slots=True)
class GraphQLResult:
    """``data`` of an answer that had some, and the errors that came with it."""

    data: Mapping[str, Any]
    errors: tuple[FieldError, ...] = ()

    def errors_under(self, *prefix: str | int) -> list[FieldError]:
        return [e for e in self.errors if e.under(*prefix)]


def _retry_after(error: FieldError) -> float:
    try:
        return float((error.extensions or {}).get("retryAfter", 1.0))
    except (TypeError, ValueError):
        return 1.0


def error_for(errors: Sequence[FieldError], where: str) -> UpstreamError:
    """The typed error a failed operation stands for (see the module docstring)."""
    if not errors:
        return UpstreamUnavailable(f"{where}: no data and no errors in the answer")
    first = errors[0]
    message = f"{where}: {first.code or 'no code'}: {first.message}"
    codes = {e.code for e in errors}
    if codes & AUTH_CODES:
        return AuthenticationFailed(message)
    if codes & RATE_CODES:
        return RateLimited(message, retry_after=_retry_after(first))
    if codes and codes <= REJECTED_CODES:
        return UpstreamRejected(message)
    return UpstreamUnavailable(message)


class GraphQLClient:
    """Sends GraphQL operations with variables over an ``httpx.AsyncClient`` (whose auth flow signs in).

    Args:
        http: the connector's HTTP client (base URL, timeout, auth).
        path: the GraphQL endpoint below the base URL.
    """

    def __init__(self, http: httpx.AsyncClient, path: str = "/graphql") -> None:
        self.http = http
        self.path = path

    async def execute(self, document: str, variables: Mapping[str, Any] | None = None,
                      operation_name: str | None = None) -> GraphQLResult:
        """Run one operation; raises the typed error when the answer carries no data."""
        payload: dict[str, Any] = {"query": document, "variables": dict(variables or {})}
        if operation_name:
            payload["operationName"] = operation_name
        where = f"POST {self.path} {operation_name or ''}".rstrip()
        response = await send(self.http, "POST", self.path, json=payload,
                              headers={"Accept": "application/graphql-response+json, application/json"})
        try:
            body = response.json()
        except ValueError:
            raise UpstreamRejected(f"{where}: answer is not JSON") from None
        if not isinstance(body, Mapping) or not ({"data", "errors"} & set(body)):
            raise UpstreamRejected(f"{where}: answer is not a GraphQL response")
        raw_errors = body.get("errors") or []
        if not isinstance(raw_errors, list):
            raw_errors = [raw_errors]
        errors = tuple(FieldError.read(e) for e in raw_errors)
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise error_for(errors, where)
        return GraphQLResult(data, errors)

    async def field(self, name: str, document: str, variables: Mapping[str, Any] | None = None,
                    operation_name: str | None = None) -> tuple[Any, GraphQLResult]:
        """Run an operation and return its root field ``name``; a null root field raises its error."""
        result = await self.execute(document, variables, operation_name)
        value = result.data.get(name)
        if value is None:
            raise error_for(result.errors_under(name) or list(result.errors),
                            f"POST {self.path} {operation_name or name}")
        return value, result

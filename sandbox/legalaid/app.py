"""The legal-aid system (法律援助, sandbox stand-in): a GraphQL API at ``POST /graphql``.

Schema-first: the served schema is built from ``schema.graphql`` (the contract) with graphql-core, and
the resolvers are attached here, so the contract and the service cannot drift apart.

* ``applications(updatedSince, first, after)`` — Relay connection by (updatedAt, applicationNo);
* ``applicationsByNo(nos)`` — at most 25 (more → ``LIMIT_EXCEEDED``);
* ``recordFeedback(input)`` — ACCEPT / PROGRESS / CLOSE / RETURN, once per ``requestId``.

Auth is ``Authorization: Bearer <token>``; anything else is HTTP 401 with a GraphQL-style error body.
A body that is not a GraphQL request is HTTP 400; everything else is HTTP 200 (GraphQL over HTTP with
``application/json``): parse and validation failures with ``errors`` only, execution with ``data`` and,
when something failed, ``errors``.
"""

from __future__ import annotations

import hmac
import inspect
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.language import OperationType, StringValueNode, ValueNode
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.legalaid.applications import ApplicationBook, CursorError, FeedbackRefused, decode_cursor
from sandbox.world import Ticket

__all__ = ["BATCH_LIMIT", "MAX_FIRST", "SCHEMA_FILE", "TOKEN", "build_legalaid_schema", "create_app"]

TOKEN = "sandbox-legalaid-token"
BATCH_LIMIT = 25
MAX_FIRST = 100
SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
BEIJING = ZoneInfo("Asia/Shanghai")


def _serialize_datetime(value: Any) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        shown = value.isoformat() if isinstance(value, datetime) else repr(value)
        raise GraphQLError(f"DateTime cannot represent a time without a zone: {shown}")
    local = value.astimezone(BEIJING)
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"DateTime cannot parse {value!r}") from None
    if moment.tzinfo is None:
        raise GraphQLError(f"DateTime needs an offset (e.g. +08:00): {value!r}")
    return moment.astimezone(UTC)


def _parse_datetime_literal(node: ValueNode, _variables: Any = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("DateTime must be an ISO-8601 string")
    return _parse_datetime(node.value)


def _user_error(message: str, code: str = "BAD_USER_INPUT") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class Resolvers:
    """The root fields over one :class:`ApplicationBook`; graphql-core calls ``root[field](info, **args)``."""

    def __init__(self, book: ApplicationBook) -> None:
        self.book = book

    def applications(self, _info: GraphQLResolveInfo[Any], first: int = 50, after: str | None = None,
                     updatedSince: datetime | None = None) -> dict[str, Any]:
        if first > MAX_FIRST:
            raise _user_error(f"first最多为{MAX_FIRST}", "LIMIT_EXCEEDED")
        if first < 1:
            raise _user_error("first须为正整数")
        try:
            position = None if after is None else decode_cursor(after)
        except CursorError as exc:
            raise _user_error(str(exc)) from None
        total, shown, more = self.book.page(updatedSince, position, first)
        return {"edges": [{"cursor": cursor, "node": node} for cursor, node in shown], "totalCount": total,
                "pageInfo": {"hasNextPage": more, "endCursor": shown[-1][0] if shown else None}}

    def applications_by_no(self, _info: GraphQLResolveInfo[Any], nos: list[str]
                           ) -> list[dict[str, Any] | None]:
        if len(nos) > BATCH_LIMIT:
            raise _user_error(f"单次最多查询{BATCH_LIMIT}件", "LIMIT_EXCEEDED")
        return self.book.by_no(nos)

    def record_feedback(self, _info: GraphQLResolveInfo[Any], input: dict[str, Any]) -> dict[str, Any]:
        try:
            duplicate, application = self.book.feedback(input)
        except FeedbackRefused as exc:
            return {"ok": False, "duplicate": False, "code": exc.code, "message": exc.message,
                    "application": None}
        return {"ok": True, "duplicate": duplicate, "code": None,
                "message": "重复请求，已忽略" if duplicate else "已记录", "application": application}


def build_legalaid_schema() -> GraphQLSchema:
    """The served schema: ``schema.graphql`` with the DateTime scalar's behaviour attached."""
    schema = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    scalar: Any = schema.type_map["DateTime"]
    scalar.serialize = _serialize_datetime
    scalar.parse_value = _parse_datetime
    scalar.parse_literal = _parse_datetime_literal
    if hasattr(scalar, "coerce_output_value"):  # graphql-core 3.3 reads these, copied at build time
        scalar.coerce_output_value = _serialize_datetime
        scalar.coerce_input_value = _parse_datetime
    return schema


def _body(errors: list[dict[str, Any]], data: Any = None) -> dict[str, Any]:
    return {"data": data, "errors": errors}


def _formatted(error: GraphQLError, default_code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = {**error.formatted}
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        formatted["message"] = "内部错误"  # never a stack trace or an internal message
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", default_code)
    formatted["extensions"] = extensions
    return formatted


class LegalAidApi:
    def __init__(self, schema: GraphQLSchema, resolvers: Resolvers, token: str) -> None:
        self.schema = schema
        self.token = token
        self.query_root = {"applications": resolvers.applications,
                           "applicationsByNo": resolvers.applications_by_no}
        self.mutation_root = {"recordFeedback": resolvers.record_feedback}

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.token.encode())

    async def graphql(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse(_body([{"message": "未授权：缺少或无效的访问令牌",
                                        "extensions": {"code": "UNAUTHENTICATED"}}]),
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="legalaid"'})
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return JSONResponse(_body([{"message": "请求体须为含query的JSON对象",
                                        "extensions": {"code": "BAD_REQUEST"}}]), status_code=400)
        return await self._run(payload)

    async def _run(self, payload: dict[str, Any]) -> Response:
        # a request error before execution: HTTP 200 (the answer is application/json) and no "data"
        try:
            document = parse(payload["query"])
        except GraphQLError as exc:
            return JSONResponse({"errors": [_formatted(exc, "GRAPHQL_PARSE_FAILED")]})
        invalid = validate(self.schema, document)
        if invalid:
            return JSONResponse({"errors": [_formatted(e, "GRAPHQL_VALIDATION_FAILED") for e in invalid]})
        operation = get_operation_ast(document, payload.get("operationName"))
        is_mutation = operation is not None and operation.operation is OperationType.MUTATION
        variables = payload.get("variables") if isinstance(payload.get("variables"), dict) else None
        root = self.mutation_root if is_mutation else self.query_root
        result = execute(self.schema, document, root_value=root, variable_values=variables,
                         operation_name=payload.get("operationName"))
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            # errors without a path come from coercing the variables: the caller's input
            answer["errors"] = [_formatted(e, "INTERNAL_SERVER_ERROR" if e.path else "BAD_USER_INPUT")
                                for e in result.errors]
        return JSONResponse(answer)


def create_app(tickets: list[Ticket], *, seed: int = 7, token: str = TOKEN) -> ASGIApp:
    """The legal-aid system's ASGI app over ``tickets`` (the world's ``legalaid`` tickets)."""
    sandbox = ChannelSandbox("legalaid", tickets, seed=seed)
    api = LegalAidApi(build_legalaid_schema(), Resolvers(ApplicationBook(sandbox)), token)
    routes: list[BaseRoute] = [Route("/graphql", api.graphql, methods=["POST"])]
    return sandbox.build(routes)

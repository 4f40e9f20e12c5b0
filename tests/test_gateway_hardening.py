"""Request hygiene at ``/graphql``: limits over HTTP, batching, body cap, CSRF, timeouts, rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.graphql_http import GraphQLEndpoint, HttpPolicy
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import Graph, SandboxServer, gateway_settings, start_gateway
from tests.servers import serve

JSON = {"content-type": "application/json"}


def _code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def test_the_alias_bypass_through_fragments_is_closed(graph: Graph) -> None:
    query = ("{ me { ...F ...F ...F ...F } } fragment F on Viewer { "
             + " ".join(f"a{i}: username" for i in range(10)) + " }")
    body = graph.post(query).json()
    assert _code(body) == "QUERY_TOO_COMPLEX"
    assert "data" not in body


def test_a_fragment_cycle_is_a_validation_error(graph: Graph) -> None:
    body = graph.query("{ ...A } fragment A on Query { me { username } ...B } fragment B on Query { ...A }")
    assert _code(body) == "GRAPHQL_VALIDATION_FAILED"


def test_batches_are_off_by_default(graph: Graph) -> None:
    answer = httpx.post(graph.url, json=[{"query": "{ me { username } }"}] * 2, headers=graph.auth_headers)
    assert answer.status_code == 400
    assert _code(answer.json()) == "BAD_REQUEST"


def test_a_body_past_the_cap_is_refused_unread(graph: Graph) -> None:
    huge = {"query": "query($x: String) { me { username } }", "variables": {"x": "民" * 400_000}}
    answer = httpx.post(graph.url, json=huge, headers=graph.auth_headers)
    assert answer.status_code == 413
    assert _code(answer.json()) == "PAYLOAD_TOO_LARGE"


def test_get_needs_a_preflight_header(graph: Graph) -> None:
    params, auth = {"query": "{ me { username } }"}, graph.auth_headers
    blocked = httpx.get(graph.url, params=params, headers=auth)
    assert blocked.status_code == 400
    assert "CSRF" in blocked.json()["errors"][0]["message"]
    plain = {"content-type": "text/plain", **auth}
    assert httpx.get(graph.url, params=params, headers=plain).status_code == 400
    for header in ("x-apollo-operation-name", "apollo-require-preflight", "graphql-preflight"):
        assert httpx.get(graph.url, params=params, headers={header: "x", **auth}).status_code == 200, header
    assert httpx.get(graph.url, params=params, headers={**JSON, **auth}).status_code == 200
    # a mutation over GET stays 405, preflighted or not
    assert httpx.get(graph.url, params={"query": "mutation { __typename }"},
                     headers={"graphql-preflight": "1", **auth}).status_code == 405


@pytest.fixture(scope="module")
def hardened(sandbox: SandboxServer, synced_redis_url: str, e2e_dir: Path) -> Iterator[Graph]:
    """Production, batches of up to 2, and a small rate limit per client."""
    settings = gateway_settings(synced_redis_url, e2e_dir / "channels.yaml", sandbox.url, sync=False,
                                env="production", hash_key="a-production-key", max_batch=2,
                                rate_limit_operations=4, rate_limit_root_fields=6)
    with start_gateway(settings) as graph:
        yield graph


def test_production_names_the_limit_but_not_the_numbers(hardened: Graph) -> None:
    deep = "{ regions { " + "children { " * 20 + "id" + " }" * 20 + " } }"
    body = hardened.as_user("xinfang").post(deep).json()
    assert _code(body) == "QUERY_TOO_COMPLEX"
    assert not any(ch.isdigit() for ch in body["errors"][0]["message"])


def test_batches_up_to_the_cap(hardened: Graph) -> None:
    one, auth = {"query": "{ me { username } }"}, hardened.auth_headers  # each client its own budget
    answer = httpx.post(hardened.url, json=[one, one], headers=auth)
    assert answer.status_code == 200
    assert [item["data"]["me"]["username"] for item in answer.json()] == ["center", "center"]
    too_many = httpx.post(hardened.url, json=[one] * 3, headers=auth)
    assert too_many.status_code == 400


def test_the_rate_limit_counts_operations_per_client(hardened: Graph) -> None:
    client = hardened.as_user("yutang")
    answers = [client.post("{ me { username } }") for _ in range(10)]
    refused = next(answer for answer in answers if answer.status_code == 429)  # at most 4 per window
    assert int(refused.headers["retry-after"]) >= 1
    assert _code(refused.json()) == "RATE_LIMITED"
    assert hardened.as_user("citizen").post("{ me { username } }").status_code == 200  # another viewer


def test_the_rate_limit_counts_root_fields(hardened: Graph) -> None:
    seven = "{ " + " ".join(f"c{i}: me {{ username }}" for i in range(7)) + " }"
    answer = hardened.as_user("labor").post(seven)
    assert answer.status_code == 429


@strawberry.type
class _SlowQuery:
    @strawberry.field
    async def slow(self) -> str:
        await asyncio.sleep(30)
        return "never"

    @strawberry.field
    def fast(self) -> str:
        return "fast"


class _Bare(GraphQLEndpoint):
    async def get_context(self, request: Any, response: Any) -> Any:
        return {}


def test_an_operation_past_the_execution_timeout_answers_504() -> None:
    endpoint = _Bare(strawberry.Schema(query=_SlowQuery), production=False,
                     policy=HttpPolicy(execution_timeout=0.2))
    with serve(Starlette(routes=[Route("/graphql", endpoint)])) as url:
        slow = httpx.post(f"{url}/graphql", json={"query": "{ slow }"}, timeout=30)
        assert slow.status_code == 504
        assert _code(slow.json()) == "GATEWAY_TIMEOUT"
        assert httpx.post(f"{url}/graphql", json={"query": "{ fast }"}).json() == {"data": {"fast": "fast"}}


def test_hostile_client_input_is_a_client_error(graph: Graph) -> None:
    case_id = graph.data("{ cases(first: 1) { nodes { id } } }")["cases"]["nodes"][0]["id"]
    checks: list[tuple[str, dict[str, Any], str]] = [
        ('{ case(id: "!!not-an-id") { id } }', {}, "BAD_USER_INPUT"),
        ('{ case(id: "") { id } }', {}, "BAD_USER_INPUT"),
        ("query($id: ID!) { case(id: $id) { id } }", {"id": ["a", "list"]}, "BAD_USER_INPUT"),
        ("query($n: Int) { cases(first: $n) { totalCount } }", {"n": "ten"}, "BAD_USER_INPUT"),
        ("query($n: Int) { cases(first: $n) { totalCount } }", {"n": 2**40}, "BAD_USER_INPUT"),
        ("query($n: Int) { cases(first: $n) { totalCount } }", {"n": -5}, "BAD_USER_INPUT"),
        ('{ cases(after: "garbage") { totalCount } }', {}, "BAD_USER_INPUT"),
        ("query($r: [_Any!]!) { _entities(representations: $r) { __typename } }", {"r": ["x"]},
         "BAD_USER_INPUT"),
        ("query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
         {"r": [{"__typename": "Nope", "id": "1"}]}, "BAD_USER_INPUT"),
    ]
    for query, variables, code in checks:
        answer = graph.post(query, variables)
        assert answer.status_code < 500, (query, answer.text)
        assert _code(answer.json()) == code, (query, variables, answer.json())
    assert graph.data("query($id: ID!) { case(id: $id) { id } }", {"id": case_id})["case"]["id"] == case_id


def test_huge_and_deep_variables_never_fail_the_server(graph: Graph) -> None:
    wide = {f"v{i}": "民" * 10 for i in range(20_000)}  # ~0.5 MB of variables nobody declared
    answer = graph.post("{ me { username } }", wide)
    assert answer.status_code == 200, answer.text[:500]
    deep = "[" * 100_000 + "]" * 100_000  # nested past Python's recursion limit
    body = '{"query": "query($x: [String]) { me { username } }", "variables": {"x": ' + deep + "}}"
    answer = httpx.post(graph.url, content=body.encode(), headers={**JSON, **graph.auth_headers})
    assert answer.status_code == 400, answer.text[:500]
    assert "Traceback" not in answer.text

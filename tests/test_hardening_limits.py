"""Operation limits measured with fragments expanded, including the known fragment bypasses."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from graphql import GraphQLSchema, parse

from gateway.app import installed_connectors
from gateway.ratelimit import RateLimiter
from schema import build_schema
from schema.limits import OperationLimits, check_limits, count_root_fields, measure


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(installed_connectors())._schema


def _codes(schema: GraphQLSchema, query: str, limits: OperationLimits | None = None,
           variables: dict[str, object] | None = None) -> list[str]:
    errors = check_limits(schema, parse(query), None, variables, limits or OperationLimits())
    return [str((error.extensions or {}).get("code")) for error in errors]


def test_aliases_hidden_in_a_spread_fragment_are_counted_each_time(schema: GraphQLSchema) -> None:
    fragment = "fragment F on Viewer { " + " ".join(f"a{i}: username" for i in range(10)) + " }"
    query = "{ me { " + " ".join(["...F"] * 5) + " } } " + fragment
    assert measure(schema, parse(query)).aliases == 50  # type: ignore[union-attr]
    errors = check_limits(schema, parse(query), None, None, OperationLimits())
    assert [(e.extensions or {}).get("limit") for e in errors] == ["aliases"]
    assert _codes(schema, "{ me { ...F } } " + fragment) == []


def test_depth_through_nested_fragments_and_inline_fragments(schema: GraphQLSchema) -> None:
    # each fragment adds two levels; the chain nests 16 deep although no selection set looks deep
    fragments = " ".join(
        f"fragment R{i} on Region {{ children {{ ... on Region {{ children {{ ...R{i + 1} }} }} }} }}"
                         for i in range(8))
    query = "{ regions { ...R0 } } " + fragments + " fragment R8 on Region { id }"
    assert measure(schema, parse(query)).depth == 18  # type: ignore[union-attr]
    assert "QUERY_TOO_COMPLEX" in _codes(schema, query)


def test_a_fragment_named_like_introspection_is_not_exempt(schema: GraphQLSchema) -> None:
    deep = "regions { " + "children { " * 16 + "id" + " }" * 16 + " }"
    named = "{ ...__schema } fragment __schema on Query { " + deep + " }"
    assert "QUERY_TOO_COMPLEX" in _codes(schema, named)
    assert "QUERY_TOO_COMPLEX" in _codes(schema, "{ __schema: " + deep + " }")  # an alias is no exemption
    introspection = "{ __schema { types { fields { type { " + "ofType { " * 11 + "name" + " }" * 15 + " }"
    assert _codes(schema, introspection) == []


def test_fragment_cycles_are_rejected_before_validation(schema: GraphQLSchema) -> None:
    for query in ("{ ...A } fragment A on Query { ...A }",
                  "{ regions { ...A } } fragment A on Region { children { ...B } } "
                  "fragment B on Region { parent { ...A } }"):
        assert _codes(schema, query) == ["GRAPHQL_VALIDATION_FAILED"], query
    assert count_root_fields(parse("{ ...A } fragment A on Query { ...A }")) == 0


def test_a_fragment_bomb_is_measured_without_expanding_it(schema: GraphQLSchema) -> None:
    # 2^30 executions of the innermost field if it ran; measuring it walks each fragment once
    fragments = [f"fragment F{i} on Region {{ children {{ ...F{i + 1} }} parent {{ ...F{i + 1} }} }}"
                 for i in range(30)]
    query = "{ regions { ...F0 } } " + " ".join(fragments) + " fragment F30 on Region { id }"
    found = measure(schema, parse(query))
    assert found is not None
    assert found.cost > 2 ** 30
    assert "QUERY_TOO_COMPLEX" in _codes(schema, query, OperationLimits(max_depth=100))


def test_root_fields_count_through_fragments(schema: GraphQLSchema) -> None:
    query = ("{ __typename ...F ... on Query { departments { id } } } "
             "fragment F on Query { me { username } channels { key } }")
    assert count_root_fields(parse(query)) == 3
    many = "{ " + " ".join(f"c{i}: channels {{ key }}" for i in range(21)) + " }"
    assert "QUERY_TOO_COMPLEX" in _codes(schema, many)


def test_cost_follows_first_and_list_sizes(schema: GraphQLSchema) -> None:
    query = "query($n: Int) { cases(first: $n) { nodes { region { parent { id } } } } }"
    small = measure(schema, parse(query), variables={"n": 10})
    large = measure(schema, parse(query), variables={"n": 100})
    assert small is not None
    assert large is not None
    assert large.cost > 9 * small.cost
    limits = OperationLimits(max_cost=small.cost)
    assert _codes(schema, query, limits, {"n": 10}) == []
    assert _codes(schema, query, limits, {"n": 100}) == ["QUERY_TOO_COMPLEX"]


def test_production_messages_do_not_reveal_the_limits(schema: GraphQLSchema) -> None:
    query = "{ " + " ".join(f"a{i}: me {{ username }}" for i in range(31)) + " }"
    development = check_limits(schema, parse(query), None, None, OperationLimits())
    production = check_limits(schema, parse(query), None, None, OperationLimits(reveal=False))
    assert "30" in development[0].message
    assert not any(ch.isdigit() for ch in production[0].message)
    assert production[0].extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "aliases"}


async def test_the_rate_limiter_counts_operations_and_root_fields(redis_client: aioredis.Redis) -> None:
    now = [1_000_000.0]
    limiter = RateLimiter(operations=3, root_fields=5, window=60, clock=lambda: now[0], redis=redis_client)
    assert await limiter.charge("ip:a", 1) is None
    assert await limiter.charge("ip:a", 4) is None
    assert await limiter.charge("ip:a", 1) == pytest.approx(20.0)  # 6 root fields > 5; window ends in 20 s
    assert await limiter.charge("ip:b", 1) is None  # another client has its own budget
    now[0] += 20
    assert await limiter.charge("ip:a", 1) is None  # a new window
    for _ in range(2):
        assert await limiter.charge("ip:a", 0) is None
    assert await limiter.charge("ip:a", 0) is not None  # the fourth operation of the window

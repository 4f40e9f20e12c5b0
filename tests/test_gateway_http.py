"""The HTTP surface: GraphQL over HTTP as the spec has it, health, readiness, metrics, errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import CHANNELS, Graph, SandboxServer, gateway_settings, start_gateway

GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFLIGHT = {"graphql-preflight": "1"}  # GET needs it: CSRF prevention (test_gateway_hardening.py)


def test_get_query_and_content_types(graph: Graph) -> None:
    answer = httpx.get(graph.url, params={"query": "{ me { username } }"},
                       headers={**graph.auth_headers, **PREFLIGHT})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"data": {"me": {"username": "center"}}}
    answer = httpx.get(graph.url, params={"query": "{ me { username } }"},
                       headers={"Accept": GRAPHQL_RESPONSE, **graph.auth_headers, **PREFLIGHT})
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    answer = graph.post("{ me { username } }",
                        headers={"Accept": f"application/json;q=0.5, {GRAPHQL_RESPONSE}"})
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE)


def test_get_mutation_is_405(graph: Graph) -> None:
    answer = httpx.get(graph.url, params={"query": "mutation { __typename }"},
                       headers={**graph.auth_headers, **PREFLIGHT})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    put = httpx.put(graph.url, json={"query": "{ me { username } }"}, headers=graph.auth_headers)
    assert put.status_code == 405


def test_malformed_requests_answer_graphql_errors(graph: Graph) -> None:
    json_type = {"content-type": "application/json", **graph.auth_headers}
    answer = httpx.post(graph.url, content=b'{"query": ', headers=json_type)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    answer = httpx.post(graph.url, content=b'"just a string"', headers=json_type)
    assert answer.status_code == 400
    answer = httpx.post(graph.url, content=b"{ me { username } }",
                        headers={"content-type": "text/plain", **graph.auth_headers})
    assert answer.status_code == 415
    answer = httpx.post(graph.url, json={"variables": {}}, headers=graph.auth_headers)
    assert answer.status_code == 400
    for body in (answer.text,):
        assert "Traceback" not in body
        assert "File " not in body


def test_request_errors_have_no_data(graph: Graph) -> None:
    legacy = graph.post("{ cases { nosuchfield } }")
    assert legacy.status_code == 200
    assert "data" not in legacy.json()
    assert legacy.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    modern = graph.post("{ cases { nosuchfield } }", headers={"Accept": GRAPHQL_RESPONSE})
    assert modern.status_code == 400
    syntax = graph.post("{ cases {", headers={"Accept": GRAPHQL_RESPONSE})
    assert syntax.status_code == 400
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    variables = graph.post("query($n: Int!) { cases(first: $n) { totalCount } }",
                           headers={"Accept": GRAPHQL_RESPONSE})
    assert variables.status_code == 400
    assert variables.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    field_error = graph.post('{ node(id: "!!") { id } }', headers={"Accept": GRAPHQL_RESPONSE})
    assert field_error.status_code == 200
    assert field_error.json()["data"] == {"node": None}


def test_query_limits(graph: Graph) -> None:
    deep = "{ regions { " + "children { " * 20 + "id" + " }" * 20 + " } }"
    assert graph.query(deep)["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    aliases = "{ " + " ".join(f"a{i}: me {{ username }}" for i in range(40)) + " }"
    assert graph.query(aliases)["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_development_serves_graphiql_and_introspection(graph: Graph) -> None:
    page = httpx.get(graph.url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    types = graph.data("{ __schema { types { name } } }")["__schema"]["types"]
    assert {"Case", "Channel", "SourceRecord", "Hotline12345Source"} <= {t["name"] for t in types}
    assert "Did you mean" in graph.query("{ cases { totalCont } }")["errors"][0]["message"]


@pytest.fixture(scope="module")
def production(sandbox: SandboxServer, synced_redis_url: str, e2e_dir: Path) -> Iterator[Graph]:
    settings = gateway_settings(synced_redis_url, e2e_dir / "channels.yaml", sandbox.url, sync=False,
                                env="production", hash_key="a-production-key")
    with start_gateway(settings) as graph:
        yield graph


def test_production_hides_the_schema(production: Graph) -> None:
    assert httpx.get(production.url, headers={"Accept": "text/html"}).status_code == 404
    hidden = ("{ __schema { types { name } } }", '{ __type(name: "Case") { name } }', "{ _service { sdl } }")
    for query in hidden:
        body = production.query(query)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", query
    message = production.query("{ cases { totalCont } }")["errors"][0]["message"]
    assert "Did you mean" not in message
    assert production.data("{ cases(first: 1) { totalCount } }")["cases"]["totalCount"] > 0


def test_federation_sdl_and_entities(graph: Graph) -> None:
    sdl = graph.data("{ _service { sdl } }")["_service"]["sdl"]
    assert "@link" in sdl
    assert 'type Case implements Node @key(fields: "id")' in sdl
    case_id = graph.data("{ cases(first: 1) { nodes { id } } }")["cases"]["nodes"][0]["id"]
    entities = graph.data("""query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Case { id title } } }""", {"r": [{"__typename": "Case", "id": case_id}]})["_entities"]
    assert entities[0]["id"] == case_id
    assert entities[0]["title"]


def test_health_readiness_and_metrics(graph: Graph) -> None:
    assert httpx.get(f"{graph.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{graph.base_url}/readyz")
    assert ready.status_code == 200
    report = ready.json()
    assert report["ready"] is True
    assert {c["key"] for c in report["channels"]} == set(CHANNELS)
    assert all(c["cases"] > 0 and "quarantined" in c and "lagSeconds" in c for c in report["channels"])
    graph.query("{ cases { nosuchfield } }")
    metrics = httpx.get(f"{graph.base_url}/metrics").text
    for name in ("minsheng_http_requests_total", "minsheng_graphql_operations_total",
                 'minsheng_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}',
                 "minsheng_channel_breaker_open", "minsheng_channel_cases", "minsheng_upstream_calls_total"):
        assert name in metrics, name


def test_unknown_routes_and_landing(graph: Graph) -> None:
    missing = httpx.get(f"{graph.base_url}/no/such/page")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    landing = httpx.get(graph.base_url)
    assert landing.status_code == 200
    assert "民声" in landing.text
    assert "/graphql" in landing.text
    assert httpx.post(f"{graph.base_url}/hooks/nosuchchannel", content=b"{}").status_code == 404
    rejected = httpx.post(f"{graph.base_url}/hooks/hotline12345", content=b"{}")
    assert rejected.status_code == 401
    assert "Traceback" not in rejected.text


def test_a_signed_webhook_is_accepted(graph: Graph) -> None:
    from connectors.hotline12345 import sign_webhook
    from connectors.hotline12345.webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

    body = json.dumps({"event": "ping"}).encode()
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
    headers = {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
               SIGNATURE_HEADER: sign_webhook("sandbox-12345-webhook", timestamp, nonce, body),
               "content-type": "application/json"}
    answer = httpx.post(f"{graph.base_url}/hooks/hotline12345", content=body, headers=headers)
    assert answer.status_code == 202
    replayed = httpx.post(f"{graph.base_url}/hooks/hotline12345", content=body, headers=headers)
    assert replayed.status_code == 401

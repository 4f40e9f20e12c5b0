"""Rights on every object and edge, for each demo account logged in through ``POST /auth/token``.

Against the real gateway on the synced seed-7 world: jurisdiction (lists, ``node``, ``case``,
filters, text search), a resident's own appeals across channels, masking and audited reveal per
role, petitioner confidentiality, department visibility through assignments, department systems'
client-credentials tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from casework import keys
from casework.access import link_department_in, unlink_department_in
from resolvers.ids import decode_global_id, encode_global_id
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import Graph

YUTANG, TIANLIAO, GONGMING = "440311005", "440311005002", "440311002"
CASES = """query($f: CaseFilter, $first: Int, $after: String) {
  cases(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id channel { key } street { id } community { id } } } }"""
ONE = """query($id: ID!) { node(id: $id) { id } case(id: $id) { id } }"""


def region(key: str) -> str:
    return encode_global_id("Region", key)


def cases(graph: Graph, filter: dict[str, Any] | None = None, first: int = 100) -> dict[str, Any]:
    return dict(graph.data(CASES, {"f": filter, "first": first})["cases"])


def all_cases(graph: Graph, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        page = graph.data(CASES, {"f": filter, "first": 100, "after": after})["cases"]
        found.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def test_anonymous_callers_get_no_graph(graph: Graph) -> None:
    answer = graph.anonymous().post("{ cases { totalCount } }")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "data" not in answer.json()
    assert httpx.get(f"{graph.base_url}/healthz").status_code == 200
    assert httpx.get(f"{graph.base_url}/readyz").status_code == 200


def test_me_per_account(graph: Graph) -> None:
    me = "{ me { username roles identityVerified canDispatch mayReveal regions { name } department { id } } }"
    center = graph.data(me)["me"]
    assert center["roles"] == ["district"]
    assert center["canDispatch"]
    assert center["mayReveal"]
    yutang = graph.as_user("yutang").data(me)["me"]
    assert yutang["regions"] == [{"name": "玉塘街道"}]
    assert yutang["roles"] == ["street"]
    labor = graph.as_user("labor").data(me)["me"]
    assert labor["department"] == {"id": encode_global_id("Department", "dept-labor")}
    assert not labor["canDispatch"]
    citizen = graph.as_user("citizen").data(me)["me"]
    assert citizen["identityVerified"]
    assert not citizen["mayReveal"]
    assert citizen["roles"] == ["resident"]


def test_a_street_sees_its_street_only(graph: Graph) -> None:
    total = cases(graph)["totalCount"]
    yutang = graph.as_user("yutang")
    mine = all_cases(yutang)
    assert 0 < len(mine) < total
    assert cases(yutang, first=1)["totalCount"] == len(mine)  # totalCount counts only what it may see
    assert {case["street"]["id"] for case in mine} == {region(YUTANG)}
    assert cases(graph, {"regionId": region(YUTANG)})["totalCount"] == len(mine)


def test_a_community_sees_its_community_only(graph: Graph) -> None:
    tianliao = graph.as_user("tianliao")
    mine = all_cases(tianliao)
    assert mine
    assert {case["community"]["id"] for case in mine} == {region(TIANLIAO)}
    assert len(mine) < len(all_cases(graph.as_user("yutang")))


def test_jurisdiction_escapes_are_closed(graph: Graph) -> None:
    """Another street's case through node/case, filters and text search: never there."""
    yutang, tianliao = graph.as_user("yutang"), graph.as_user("tianliao")
    other = cases(graph, {"regionId": region(GONGMING)}, first=5)["nodes"]
    neighbour = [case for case in all_cases(yutang) if case["community"]["id"] != region(TIANLIAO)][:3]
    assert other
    assert neighbour
    for viewer, foreign in ((yutang, other), (tianliao, other + neighbour)):
        for case in foreign:
            assert viewer.data(ONE, {"id": case["id"]}) == {"node": None, "case": None}
            assert graph.data(ONE, {"id": case["id"]})["case"] == {"id": case["id"]}  # center sees it
        assert cases(viewer, {"regionId": region(GONGMING)})["totalCount"] == 0
    assert cases(tianliao, {"regionId": region(YUTANG)})["totalCount"] == len(all_cases(tianliao))
    title = graph.data("query($id: ID!) { case(id: $id) { title } }", {"id": other[0]["id"]})["case"]["title"]
    word = title[:4]
    assert cases(graph, {"text": word})["totalCount"] > 0
    found = all_cases(yutang, {"text": word})
    assert all(case["street"]["id"] == region(YUTANG) for case in found)
    entities = yutang.data("query($r: [_Any!]!) { _entities(representations: $r) { ... on Case { id } } }",
                           {"r": [{"__typename": "Case", "id": other[0]["id"]}]})["_entities"]
    assert entities == [None]


def test_citizen_sees_own_appeals_across_channels(graph: Graph) -> None:
    citizen = graph.as_user("citizen")
    query = "{ myCases(first: 50) { totalCount nodes { id channel { key } citizen { phone withheld } } } }"
    own = citizen.data(query)["myCases"]
    channels = {case["channel"]["key"] for case in own["nodes"]}
    assert len(channels) >= 3, channels
    assert own["totalCount"] == len(own["nodes"])
    assert all(case["citizen"] is None or not case["citizen"]["withheld"] for case in own["nodes"])
    assert {c["citizen"]["phone"] for c in own["nodes"] if c["citizen"] and c["citizen"]["phone"]} <= {
        "137****5126"}
    assert cases(citizen)["totalCount"] == own["totalCount"]  # cases is own appeals too
    assert graph.data(query)["myCases"]["totalCount"] == 0    # center has no appeals of its own
    stranger = cases(graph, {"regionId": region(GONGMING)}, first=1)["nodes"][0]["id"]
    if stranger not in {case["id"] for case in own["nodes"]}:
        assert citizen.data(ONE, {"id": stranger}) == {"node": None, "case": None}


PARTY = """query($id: ID!, $reveal: Boolean!) { case(id: $id) {
  citizen(reveal: $reveal) { name phone idNumber withheld } address(reveal: $reveal) } }"""


def audit_lines(graph: Graph, wanted: dict[str, Any], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Audit entries matching ``wanted`` (the log is written by a background thread: wait a little)."""
    assert graph.settings is not None
    path = Path(graph.settings.audit_path)
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = [json.loads(line) for line in text.splitlines()]
        found = [line for line in lines if all(line.get(k) == v for k, v in wanted.items())]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def a_case_with_phone(graph: Graph, filter: dict[str, Any]) -> str:
    page = graph.data("""query($f: CaseFilter) { cases(filter: $f, first: 50) {
        nodes { id citizen { phone } } } }""", {"f": filter})["cases"]["nodes"]
    return next(case["id"] for case in page if case["citizen"] and case["citizen"]["phone"])


def test_masking_and_audited_reveal_per_role(graph: Graph) -> None:
    case_id = a_case_with_phone(graph, {"regionId": region(TIANLIAO), "channels": ["hotline12345"]})
    masked = graph.data(PARTY, {"id": case_id, "reveal": False})["case"]
    assert "****" in masked["citizen"]["phone"]
    assert masked["citizen"]["name"].endswith("*")
    assert not audit_lines(graph, {"object": case_id, "user": "center"}, timeout=0.5)
    for username in ("center", "yutang", "tianliao"):
        clear = graph.as_user(username).data(PARTY, {"id": case_id, "reveal": True})["case"]
        assert "*" not in clear["citizen"]["phone"], username
        assert not clear["citizen"]["name"].endswith("*"), username
        wanted = {"object": case_id, "user": username, "action": "unmask", "outcome": "ok"}
        entries = audit_lines(graph, wanted)
        assert entries, username
        assert "phone" in entries[0]["fields"], username
        assert "phone" not in json.dumps(entries[0]).replace('"phone"', "")  # field names, never the data
        assert clear["citizen"]["phone"] not in json.dumps(entries)


def test_reveal_is_refused_and_audited_for_a_resident(graph: Graph) -> None:
    citizen = graph.as_user("citizen")
    case = citizen.data("{ myCases(first: 1) { nodes { id } } }")["myCases"]["nodes"][0]["id"]
    answer = citizen.data(PARTY, {"id": case, "reveal": True})["case"]
    if answer["citizen"] and answer["citizen"]["phone"]:
        assert "****" in answer["citizen"]["phone"]
    assert audit_lines(graph, {"object": case, "user": "citizen", "action": "unmask", "outcome": "denied"})


def petitions(graph: Graph) -> list[str]:
    page = cases(graph, {"channels": ["petition"]}, first=20)["nodes"]
    return [case["id"] for case in page]


def test_petitioner_identity_only_for_petition_staff(graph: Graph) -> None:
    petition = petitions(graph)[0]
    source = """query($id: ID!, $reveal: Boolean!) { case(id: $id) {
      citizen(reveal: $reveal) { name phone idNumber withheld }
      source(reveal: $reveal) { ... on PetitionSource { petitioners { name phone idNumber } } } } }"""
    for username in ("center",):
        seen = graph.as_user(username).data(source, {"id": petition, "reveal": True})["case"]
        assert seen["citizen"]["withheld"]
        assert seen["citizen"]["name"] is None
        assert seen["citizen"]["phone"] is None
        assert all(p["name"] is None and p["idNumber"] is None for p in seen["source"]["petitioners"])
    xinfang = graph.as_user("xinfang")
    masked = xinfang.data(source, {"id": petition, "reveal": False})["case"]
    assert not masked["citizen"]["withheld"]
    assert masked["citizen"]["name"].endswith("*")
    clear = xinfang.data(source, {"id": petition, "reveal": True})["case"]
    assert not clear["citizen"]["name"].endswith("*")
    assert any(p["name"] and not p["name"].endswith("*") for p in clear["source"]["petitioners"])
    assert audit_lines(graph, {"object": petition, "user": "xinfang", "action": "unmask", "outcome": "ok"})
    only_petitions = {"channels": ["petition"]}
    assert cases(xinfang, only_petitions)["totalCount"] == cases(graph, only_petitions)[
        "totalCount"]
    assert cases(xinfang, {"channels": ["hotline12345"]})["totalCount"] == 0


@pytest.fixture
def synced_redis(synced_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(synced_redis_url)
    yield client
    client.close()


def link(client: redis.Redis, case_id: str, department: str, *, linked: bool = True) -> None:
    """What dispatch (issue 5) does when it assigns: the department may now see the case."""
    _, key = decode_global_id(case_id)
    with client.pipeline(transaction=True) as pipe:
        (link_department_in if linked else unlink_department_in)(pipe, key, department)
        pipe.execute()


def test_a_department_sees_what_is_assigned_to_it(graph: Graph, synced_redis: redis.Redis) -> None:
    labor, system = graph.as_user("labor"), graph.with_token(client_token(graph.base_url))
    assert cases(labor)["totalCount"] == 0
    assigned = cases(graph, {"regionId": region(GONGMING)}, first=2)["nodes"]
    link(synced_redis, assigned[0]["id"], "dept-labor")
    try:
        for viewer in (labor, system):
            seen = cases(viewer)
            assert seen["totalCount"] == 1
            assert seen["nodes"][0]["id"] == assigned[0]["id"]
            assert viewer.data(ONE, {"id": assigned[0]["id"]})["case"] == {"id": assigned[0]["id"]}
            assert viewer.data(ONE, {"id": assigned[1]["id"]}) == {"node": None, "case": None}
        revealed = labor.data(PARTY, {"id": assigned[0]["id"], "reveal": True})["case"]["citizen"]
        assert revealed is None or revealed["phone"] is None or "*" not in revealed["phone"]
    finally:
        link(synced_redis, assigned[0]["id"], "dept-labor", linked=False)
    assert cases(labor)["totalCount"] == 0


def client_token(base_url: str) -> str:
    answer = httpx.post(f"{base_url}/auth/token", data={"grant_type": "client_credentials"},
                        auth=("labor-system", "labor-system-demo-secret"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    return str(answer.json()["access_token"])


def test_department_system_client_credentials(graph: Graph) -> None:
    system = graph.with_token(client_token(graph.base_url))
    me = system.data("{ me { username roles scopes department { id } } }")["me"]
    assert me == {"username": "labor-system", "roles": ["service"], "scopes": ["cases:read", "cases:write"],
                  "department": {"id": encode_global_id("Department", "dept-labor")}}
    wrong = httpx.post(f"{graph.base_url}/auth/token", data={"grant_type": "client_credentials"},
                       auth=("labor-system", "not-the-secret"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_the_store_counts_scoped_results(graph: Graph, synced_redis: redis.Redis) -> None:
    """The scope is filtered in the store's indexes: every page is full and totalCount is exact."""
    yutang = graph.as_user("yutang")
    first = cases(yutang, first=7)
    assert len(first["nodes"]) == 7
    assert first["pageInfo"]["hasNextPage"]
    assert synced_redis.scard(keys.region_index(YUTANG)) == first["totalCount"]

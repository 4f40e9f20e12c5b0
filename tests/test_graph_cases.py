"""The case graph end to end: eight channels in one graph, filters, paging, global ids."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from casework.text import normalise
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import CHANNELS, Graph

TEXT_WORDS = ("噪声", "漏水", "工资", "停车", "垃圾", "物业", "油烟", "路面")
CASE_FIELDS = """
  id sourceId title content status sourceStatus receivedAt updatedAt address
  channel { id key name }
  category { id name path }
  region { id name level }
  street { id name }
  community { id name }
  location { lat lng }
  citizen { role name phone idNumber }
  timeline { at kind description }
"""


def _all_cases(graph: Graph, filter_: dict[str, Any] | None = None, page: int = 100) -> list[dict[str, Any]]:
    query = """query($filter: CaseFilter, $first: Int, $after: String) {
      cases(filter: $filter, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        nodes { id sourceId title content status receivedAt channel { key } region { id }
                street { id } community { id } category { id path } }
      } }"""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        cases = graph.data(query, {"filter": filter_, "first": page, "after": after})["cases"]
        found += cases["nodes"]
        if not cases["pageInfo"]["hasNextPage"]:
            assert len(found) == cases["totalCount"]
            return found
        after = cases["pageInfo"]["endCursor"]


def test_cases_from_all_eight_channels_in_one_graph(graph: Graph) -> None:
    aliases = "\n".join(
        f'{key}: cases(filter: {{channels: ["{key}"]}}, first: 2) {{ totalCount nodes {{ {CASE_FIELDS} }} }}'
        for key in CHANNELS)
    data = graph.data(f"{{ all: cases(first: 1) {{ totalCount }} channels {{ key caseCount }} {aliases} }}")
    counts = {channel["key"]: channel["caseCount"] for channel in data["channels"]}
    assert set(counts) == set(CHANNELS)
    for key in CHANNELS:
        assert data[key]["totalCount"] == counts[key] > 0, key
        for case in data[key]["nodes"]:
            assert case["channel"]["key"] == key
            assert case["title"]
            assert case["status"]
            assert case["sourceStatus"]
            assert case["timeline"], "the ingest is on the timeline"
    assert data["all"]["totalCount"] == sum(counts.values())


def test_personal_data_is_masked(graph: Graph) -> None:
    nodes = graph.data("{ cases(first: 100) { nodes { citizen { phone idNumber } parties { phone } } } }")
    citizens = [case["citizen"] for case in nodes["cases"]["nodes"] if case["citizen"]]
    phones = [citizen["phone"] for citizen in citizens if citizen["phone"]]
    ids = [citizen["idNumber"] for citizen in citizens if citizen["idNumber"]]
    assert phones, "the sandbox gives residents phone numbers"
    assert all("****" in phone for phone in phones)
    assert all(number.count("*") == 11 for number in ids)


def test_filter_by_channel_and_status(graph: Graph) -> None:
    everything = _all_cases(graph)
    statuses = {case["status"] for case in everything}
    assert len(statuses) > 1
    for status in statuses:
        found = _all_cases(graph, {"statuses": [status], "channels": ["hotline12345", "petition"]})
        expected = [c for c in everything if c["status"] == status and c["channel"]["key"] in
                    ("hotline12345", "petition")]
        assert {c["id"] for c in found} == {c["id"] for c in expected}


def test_filter_by_region_includes_everything_beneath(graph: Graph) -> None:
    district = graph.data("{ regions { id name level children { id name level } } }")["regions"]
    assert [region["level"] for region in district] == ["DISTRICT"]
    streets = district[0]["children"]
    assert len(streets) == 6
    assert all(street["level"] == "STREET" for street in streets)
    everything = _all_cases(graph)
    whole = _all_cases(graph, {"regionId": district[0]["id"]})
    assert len(whole) == len([c for c in everything if c["region"]])
    for street in streets:
        found = _all_cases(graph, {"regionId": street["id"]})
        beneath = {c["id"] for c in everything if (c["street"] or {}).get("id") == street["id"]}
        assert {c["id"] for c in found} == beneath
    community = next(c["community"]["id"] for c in everything if c["community"])
    found = _all_cases(graph, {"regionId": community})
    assert found
    assert all(c["community"]["id"] == community for c in found)


def test_filter_by_category_class(graph: Graph) -> None:
    top = graph.data("{ categories { id name level children { id name } } }")["categories"]
    assert {c["name"] for c in top} == {"投诉建议", "纠纷调解", "法律服务", "心理服务", "帮扶救助"}
    complaints = next(c for c in top if c["name"] == "投诉建议")
    found = _all_cases(graph, {"categoryId": complaints["id"]})
    assert found
    assert all(case["category"]["path"][0] == "投诉建议" for case in found)
    leaf = found[0]["category"]
    assert all(case["category"]["id"] == leaf["id"] for case in _all_cases(graph, {"categoryId": leaf["id"]}))


def test_filter_by_chinese_text(graph: Graph) -> None:
    everything = _all_cases(graph)
    word = next(w for w in TEXT_WORDS if any(w in case["title"] + case["content"] for case in everything))
    expected = {case["id"] for case in everything if word in case["title"] + case["content"]}
    found = _all_cases(graph, {"text": word})
    assert expected <= {case["id"] for case in found}
    # the store matches traditional characters too (噪聲 for 噪声) and ignores punctuation between them
    assert all(word in normalise(case["title"] + case["content"]) for case in found)


def test_filter_by_received_time(graph: Graph) -> None:
    everything = _all_cases(graph)
    times = sorted(datetime.fromisoformat(case["receivedAt"]) for case in everything)
    middle = times[len(times) // 2] + timedelta(microseconds=1)  # between two cases, never on one
    after = _all_cases(graph, {"receivedAfter": middle.isoformat()})
    before = _all_cases(graph, {"receivedBefore": middle.isoformat()})
    assert after
    assert before
    assert all(datetime.fromisoformat(c["receivedAt"]) >= middle for c in after)
    assert all(datetime.fromisoformat(c["receivedAt"]) <= middle for c in before)
    assert len(after) + len(before) == len(everything)


def test_paging_walks_every_case_once(graph: Graph) -> None:
    total = graph.data("{ cases { totalCount } }")["cases"]["totalCount"]
    seen = _all_cases(graph, page=37)
    assert len(seen) == total == len({case["id"] for case in seen})
    newest_first = [case["receivedAt"] for case in seen]
    assert newest_first == sorted(newest_first, reverse=True)
    edges = graph.data("{ cases(first: 3) { edges { cursor node { id } } pageInfo { endCursor } } }")["cases"]
    assert edges["edges"][-1]["cursor"] == edges["pageInfo"]["endCursor"]
    rest = graph.data('query($a: String) { cases(first: 1, after: $a) { nodes { id } } }',
                      {"a": edges["edges"][0]["cursor"]})["cases"]["nodes"]
    assert rest[0]["id"] == edges["edges"][1]["node"]["id"]


def test_node_round_trip_for_every_type(graph: Graph) -> None:
    data = graph.data("""{
      cases(first: 50) { nodes { id channel { id } region { id } category { id } } }
      departments { id } }""")
    # not simply the newest: a free-text report (an Open311 board post) has no region, and which case
    # is newest moves with the time of day the sandbox world was generated at
    case = next(c for c in data["cases"]["nodes"] if c["region"] and c["category"])
    ids = {"Case": case["id"], "Channel": case["channel"]["id"], "Region": case["region"]["id"],
           "EventCategory": case["category"]["id"], "Department": data["departments"][0]["id"]}
    for type_name, global_id in ids.items():
        node = graph.data("query($id: ID!) { node(id: $id) { __typename id } }", {"id": global_id})["node"]
        assert node == {"__typename": type_name, "id": global_id}
    found = graph.data("query($id: ID!) { case(id: $id) { id } }", {"id": case["id"]})["case"]
    assert found["id"] == case["id"]


def test_malformed_and_unknown_ids(graph: Graph) -> None:
    body = graph.query('{ node(id: "not base64 at all!") { id } }')
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    from resolvers.ids import encode_global_id

    missing = encode_global_id("Case", "mayor:no-such-ticket")
    assert graph.data("query($id: ID!) { node(id: $id) { id } case(id: $id) { id } }", {"id": missing}) == {
        "node": None, "case": None}
    region_id = graph.data("{ regions { id } }")["regions"][0]["id"]
    body = graph.query("query($id: ID!) { case(id: $id) { id } }", {"id": region_id})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_bad_page_arguments(graph: Graph) -> None:
    too_many = graph.query("{ cases(first: 101) { totalCount } }")
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_cursor = graph.query('{ cases(after: "bm90IGEgY3Vyc29y") { totalCount } }')
    assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown_region = graph.query('{ cases(filter: {regionId: "UmVnaW9uOjk5OQ"}) { totalCount } }')
    assert unknown_region["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_reference_data(graph: Graph) -> None:
    data = graph.data("""{ regions { name children { name code children { name level parent { name } } } }
                           departments { id name kind } me { username authenticated roles } }""")
    district = data["regions"][0]
    assert district["name"] == "光明区"
    yutang = next(street for street in district["children"] if street["name"] == "玉塘街道")
    assert yutang["code"] == "440311005"
    assert any(c["name"] == "田寮社区" and c["parent"]["name"] == "玉塘街道" for c in yutang["children"])
    assert data["departments"]
    assert data["me"] == {"username": "center", "authenticated": True, "roles": ["district"]}

"""民声云 through the real gateway: dispatchView, Case.cluster / duplicates, mergeClusters / splitCase."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e import *  # noqa: F403 (fixtures)
from tests.e2e import Graph, SandboxServer

VIEW = """query($filter: ClusterFilter, $first: Int, $after: String, $sort: DispatchSort) {
  dispatchView(filter: $filter, first: $first, after: $after, sort: $sort) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id title caseCount channels risk status lastReceivedAt
            mergeReasons { caseId by score signals { text place category } }
            cases { id channel { key } } }
  }
}"""


def _view(graph: Graph, **variables: Any) -> dict[str, Any]:
    return dict(graph.data(VIEW, variables)["dispatchView"])


def test_every_case_is_in_exactly_one_cluster(graph: Graph) -> None:
    cases = graph.data("{ cases(first: 1) { totalCount } }")["cases"]["totalCount"]
    seen: list[str] = []
    after = None
    while True:
        page = _view(graph, first=100, after=after)
        seen += [case["id"] for node in page["nodes"] for case in node["cases"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == cases


def test_cross_channel_clusters_carry_their_reasons(graph: Graph) -> None:
    page = _view(graph, first=50, sort="MOST_REPORTS", filter={"minCases": 2})
    assert page["totalCount"] >= 10
    crossing = [node for node in page["nodes"] if len(node["channels"]) >= 2]
    assert crossing, "no cluster spans two channels"
    for node in page["nodes"]:
        assert node["caseCount"] >= 2
        auto = [r for r in node["mergeReasons"] if r["by"] == "auto" and r["signals"]["text"] is not None]
        assert auto
        assert all(r["score"] > 0 for r in auto)



def test_clusters_are_precise_against_the_sandbox_truth(graph: Graph, sandbox: SandboxServer) -> None:
    """B-cubed precision over every case (bench/dedup.py reports it per split, with recall)."""
    truth = httpx.get(f"{sandbox.url}/__sandbox/truth").json()
    incident_of = {f"{r['channel']}:{r['source_id']}": inc for inc, reps in truth["incidents"].items()
                   for r in reps}
    query = """query($after: String) { dispatchView(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { cases { sourceId channel { key } } } } }"""
    clusters: list[list[str]] = []
    after = None
    while True:
        page = graph.data(query, {"after": after})["dispatchView"]
        clusters += [[incident_of[f"{c['channel']['key']}:{c['sourceId']}"] for c in n["cases"]]
                     for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    per_case = [members.count(incident) / len(members) for members in clusters for incident in members]
    assert sum(per_case) / len(per_case) >= 0.95
    assert sum(len(m) > 1 and len(set(m)) == 1 for m in clusters) >= 10  # and it does merge


def test_sort_orders_and_paging(graph: Graph) -> None:
    counts = [n["caseCount"] for n in _view(graph, first=30, sort="MOST_REPORTS")["nodes"]]
    assert counts == sorted(counts, reverse=True)
    risks = [n["risk"] for n in _view(graph, first=30, sort="RISK")["nodes"]]
    assert risks == sorted(risks, reverse=True)
    first = _view(graph, first=5)
    second = _view(graph, first=5, after=first["pageInfo"]["endCursor"])
    assert not {n["id"] for n in first["nodes"]} & {n["id"] for n in second["nodes"]}
    times = [n["lastReceivedAt"] for n in first["nodes"] + second["nodes"]]
    assert times == sorted(times, reverse=True)
    assert first["totalCount"] == second["totalCount"]


def test_filters(graph: Graph) -> None:
    total = _view(graph, first=0)["totalCount"]
    petitions = _view(graph, first=100, filter={"channels": ["petition"]})
    assert 0 < petitions["totalCount"] < total
    assert all("petition" in n["channels"] for n in petitions["nodes"])
    texts = _view(graph, first=100, filter={"text": "油烟"})
    assert 0 < texts["totalCount"] < total
    multi = _view(graph, first=100, filter={"minCases": 2})
    assert all(n["caseCount"] >= 2 for n in multi["nodes"])
    assert multi["totalCount"] < total
    street = graph.data("{ regions { id children { id name } } }")["regions"][0]["children"][0]
    inside = _view(graph, first=0, filter={"regionId": street["id"]})["totalCount"]
    assert 0 < inside < total


def test_bad_input_is_typed(graph: Graph) -> None:
    body = graph.query(VIEW, {"after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = graph.query(VIEW, {"first": 1000})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = graph.query("mutation { mergeClusters(ids: []) { cluster { id } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_case_cluster_and_duplicates(graph: Graph) -> None:
    node = _view(graph, first=1, sort="MOST_REPORTS")["nodes"][0]
    answer = graph.data('query($id: ID!) { case(id: $id) { cluster { id caseCount } duplicates { id } } }',
                        {"id": node["cases"][0]["id"]})["case"]
    assert answer["cluster"]["id"] == node["id"]
    assert {d["id"] for d in answer["duplicates"]} == {c["id"] for c in node["cases"][1:]}


def test_a_clusters_cases_come_a_slice_at_a_time(graph: Graph) -> None:
    # a mass incident's cluster holds thousands of cases: a client reads them a slice at a time
    node = _view(graph, first=1, sort="MOST_REPORTS")["nodes"][0]
    assert node["caseCount"] >= 3
    every = [c["id"] for c in node["cases"]]
    sliced = """query($id: ID!, $first: Int, $after: ID) {
      node(id: $id) { ... on Cluster { cases(first: $first, after: $after) { id } } } }"""
    head = [c["id"] for c in graph.data(sliced, {"id": node["id"], "first": 2})["node"]["cases"]]
    rest = [c["id"] for c in graph.data(sliced, {"id": node["id"], "after": head[-1]})["node"]["cases"]]
    assert head + rest == every
    assert graph.data(sliced, {"id": node["id"], "first": 0})["node"]["cases"] == []
    duplicates = ("query($id: ID!, $after: ID) { case(id: $id) { duplicates(first: 1, after: $after) "
                  "{ id } } }")
    assert graph.data(duplicates, {"id": every[0]})["case"]["duplicates"] == [{"id": every[1]}]
    after_first = graph.data(duplicates, {"id": every[1], "after": every[0]})["case"]["duplicates"]
    assert after_first == [{"id": every[2]}]
    other = _view(graph, first=2, sort="MOST_REPORTS")["nodes"][1]["cases"][0]["id"]
    for wrong in ({"after": other}, {"first": 1000}, {"after": node["id"]}):
        body = graph.query(sliced, {"id": node["id"], **wrong})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", wrong


def test_merge_and_split_by_hand(graph: Graph) -> None:
    a, b = _view(graph, first=2, filter={"channels": ["court"]})["nodes"]
    merged = graph.data('mutation($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id caseCount manual '
                        'mergeReasons { by } } } }', {"ids": [a["id"], b["id"]]})["mergeClusters"]["cluster"]
    assert merged["caseCount"] == a["caseCount"] + b["caseCount"]
    assert merged["manual"]
    assert any(r["by"].startswith("manual:") for r in merged["mergeReasons"])
    gone = graph.data('query($id: ID!) { node(id: $id) { id } }',
                      {"id": b["id"] if merged["id"] == a["id"] else a["id"]})["node"]
    assert gone is None
    moved = b["cases"][0]["id"] if merged["id"] == a["id"] else a["cases"][0]["id"]
    split = graph.data('mutation($id: ID!) { splitCase(caseId: $id) { cluster { id caseCount manual } } }',
                       {"id": moved})["splitCase"]["cluster"]
    assert split["caseCount"] == 1
    assert split["manual"]
    assert split["id"] != merged["id"]
    again = graph.query('mutation($id: ID!) { splitCase(caseId: $id) { cluster { id } } }', {"id": moved})
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    missing = graph.query('mutation { mergeClusters(ids: ["Q2x1c3RlcjpjOTk5OTk5", "Q2x1c3RlcjpjOTk5OTk4"]) '
                          '{ cluster { id } } }')
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_rights_on_clusters(graph: Graph) -> None:
    anonymous = graph.anonymous().post(VIEW, {"first": 1}).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    a, b = _view(graph, first=2)["nodes"]
    citizen = graph.as_user("citizen")
    refused = citizen.query('mutation($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id } } }',
                            {"ids": [a["id"], b["id"]]})
    assert refused["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "NOT_FOUND"}
    total = _view(graph, first=0)["totalCount"]
    street = _view(graph.as_user("yutang"), first=100)
    assert 0 < street["totalCount"] < total
    own = _view(citizen, first=100)
    assert 0 < own["totalCount"] < street["totalCount"] + total
    assert own["totalCount"] < 10


def test_petition_staff_see_petition_clusters_but_may_not_merge_them(graph: Graph) -> None:
    staff = graph.as_user("xinfang")
    nodes = _view(staff, first=50, filter={"channels": ["petition"]})["nodes"]
    petitions = [n for n in nodes if n["channels"] == ["petition"]][:2]  # no case they may not see
    assert len(petitions) == 2
    refused = staff.query('mutation($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id } } }',
                          {"ids": [n["id"] for n in petitions]})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

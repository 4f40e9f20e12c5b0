"""The dispatch loop through the graph: a gateway of its own (sync on) over a sandbox of its own.

The command centre dispatches a 12345 work order, the labour bureau signs, reports progress and
resolves it, the rating closes it; the work order in the 12345 system shows every step
(``Case.writeBacks`` and the live source); the mutations refuse with CONFLICT, FORBIDDEN and
BAD_USER_INPUT where they must; ``stats`` and ``riskMap`` count it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from resolvers.ids import encode_global_id
from tests.e2e import (
    SCRATCH_DBS,
    SEED,
    Graph,
    gateway_settings,
    redis_db_url,
    start_gateway,
    write_channels_file,
)
from tests.servers import serve

LABOR = encode_global_id("Department", "dept-labor")

DISPATCH = """mutation($input: DispatchInput!) { dispatchCluster(input: $input) {
  cluster { id status suggestedDepartment { shortName } assignment { id status } }
  dispatch { status version card deadline suggestedDepartment { department { shortName } tier reason } }
  assignment { id status deadline signDeadline department { shortName } } } }"""
SIGN = "mutation($id: ID!) { signAssignment(id: $id) { assignment { status signedAt } dispatch { status } } }"
PROGRESS = """mutation($input: ProgressInput!) { addProgress(input: $input) { dispatch { status } } }"""
RETURN = """mutation($input: ReturnInput!) { returnAssignment(input: $input) { dispatch { status } } }"""
RESOLVE = (
    """mutation($input: ResolveInput!) { resolveCluster(input: $input) { dispatch { status resolution } } }"""
)
EVALUATE = """mutation($input: EvaluationInput!) { evaluateCase(input: $input) {
  dispatch { status } case { evaluation { rating comment } } } }"""
WRITE_BACKS = """query($id: ID!) { case(id: $id) { writeBacks { kind state attempts sourceStatus } source {
  ... on Hotline12345Source { statusWord actions { kind } } } } }"""


@pytest.fixture(scope="module")
def loop_gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    from sandbox.app import create_sandbox

    with serve(create_sandbox(SEED)) as sandbox_url:
        httpx.post(f"{sandbox_url}/__sandbox/arrive").raise_for_status()
        directory: Path = tmp_path_factory.mktemp("graph-dispatch")
        channels = write_channels_file(directory, sandbox_url, only=("hotline12345", "petition"))
        settings = gateway_settings(redis_db_url(redis_url, SCRATCH_DBS[3]), channels, sandbox_url)
        with start_gateway(settings) as graph:
            yield graph


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def fresh_order(graph: Graph) -> str:
    data = graph.data("""{ cases(first: 1, filter: { channels: ["hotline12345"], statuses: [SUBMITTED] }) {
      nodes { id } } }""")
    return str(data["cases"]["nodes"][0]["id"])


def wait_delivered(graph: Graph, case_id: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        case = graph.data(WRITE_BACKS, {"id": case_id})["case"]
        states = [w["state"] for w in case["writeBacks"]]
        if states == ["DELIVERED"] * count or time.monotonic() > deadline:
            return dict(case)
        time.sleep(0.2)


def test_the_loop_through_the_graph(loop_gateway: Graph) -> None:
    center, labor = loop_gateway, loop_gateway.as_user("labor")
    case_id = fresh_order(center)
    answer = center.data(DISPATCH, {"input": {"clusterId": case_id, "departmentId": LABOR}})[
        "dispatchCluster"
    ]
    assert answer["dispatch"]["status"] == "DISPATCHED"
    assert answer["cluster"]["status"] == "DISPATCHED"  # the 民声云 cluster's own status moved with it
    assert answer["dispatch"]["suggestedDepartment"]["reason"]
    assignment = answer["assignment"]
    assert assignment["department"]["shortName"] == "区人力资源局"
    assert assignment["deadline"]
    assert assignment["signDeadline"]

    again = center.query(DISPATCH, {"input": {"clusterId": case_id, "departmentId": LABOR}})
    assert codes(again) == ["CONFLICT"]
    assert labor.data(SIGN, {"id": assignment["id"]})["signAssignment"]["dispatch"]["status"] == "SIGNED"
    assert codes(labor.query(SIGN, {"id": assignment["id"]})) == ["CONFLICT"]
    assert codes(labor.query(RETURN, {"input": {"assignmentId": assignment["id"], "reason": " "}})) == [
        "BAD_USER_INPUT"
    ]
    labor.data(
        PROGRESS, {"input": {"assignmentId": assignment["id"], "message": "已联系用人单位核实欠薪情况"}}
    )
    resolved = labor.data(RESOLVE, {"input": {"clusterId": case_id, "reply": "已督促用人单位足额支付工资"}})
    assert resolved["resolveCluster"]["dispatch"]["status"] == "RESOLVED"
    rated = center.data(
        EVALUATE,
        {
            "input": {
                "caseId": case_id,
                "rating": "SATISFIED",
                "comment": "回访满意",
                "reportedByChannel": True,
            }
        },
    )["evaluateCase"]
    assert rated["dispatch"]["status"] == "CLOSED"
    assert rated["case"]["evaluation"] == {"rating": "SATISFIED", "comment": "回访满意"}

    case = wait_delivered(center, case_id, 4)
    assert [w["kind"] for w in case["writeBacks"]] == ["SIGN", "REPLY", "REPLY", "RESOLVE"]
    assert [w["state"] for w in case["writeBacks"]] == ["DELIVERED"] * 4
    assert case["source"]["statusWord"] == "已办结"
    assert [a["kind"] for a in case["source"]["actions"]][-4:] == ["qianshou", "huifu", "huifu", "banjie"]

    stats = center.data(
        """query($dept: ID!) { stats(groupBy: [DEPARTMENT], filter: { departmentId: $dept }) {
      departmentId dispatched resolved resolvedOnTime evaluated satisfied onTimeRate satisfactionRate } }""",
        {"dept": LABOR},
    )
    [row] = stats["stats"]
    assert row["departmentId"] == "dept-labor"
    assert (row["dispatched"], row["resolved"], row["resolvedOnTime"], row["satisfied"]) == (1, 1, 1, 1)
    assert row["satisfactionRate"] == 1.0


def test_rights_and_operators_views(loop_gateway: Graph) -> None:
    case_id = fresh_order(loop_gateway)
    citizen = loop_gateway.as_user("citizen")
    assert codes(citizen.query(DISPATCH, {"input": {"clusterId": case_id}})) in (["FORBIDDEN"], ["NOT_FOUND"])
    labor = loop_gateway.as_user("labor")
    assert codes(labor.query("{ writeBackDeadLetters { id } }")) == ["FORBIDDEN"]
    assert isinstance(loop_gateway.data("{ writeBackDeadLetters { id } }")["writeBackDeadLetters"], list)
    assert codes(citizen.query("{ stats(groupBy: [STREET]) { received } }")) == ["FORBIDDEN"]


def test_the_risk_map_counts_what_was_received(loop_gateway: Graph) -> None:
    deadline = time.monotonic() + 30
    while True:  # the router counts the synced cases from the event log
        regions = loop_gateway.data("{ riskMap(level: STREET) { region { name } received level score } }")[
            "riskMap"
        ]
        if sum(r["received"] for r in regions) > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sum(r["received"] for r in regions) > 0
    assert all(r["level"] in ("LOW", "MEDIUM", "HIGH") for r in regions)
    assert all(r["region"]["name"].endswith("街道") for r in regions)


CASE_CLUSTER = """query($id: ID!) { case(id: $id) { cluster { id } } }"""
SOURCES = """query($id: ID!) { case(id: $id) { writeBacks { kind state } source {
  ... on Hotline12345Source { statusWord } ... on PetitionSource { status } } } }"""


def fresh(graph: Graph, channel: str, skip: int = 0) -> str:
    data = graph.data(
        """query($channels: [String!]) {
      cases(first: 10, filter: { channels: $channels, statuses: [SUBMITTED] }) {
        nodes { id cluster { caseCount } } } }""",
        {"channels": [channel]},
    )
    alone = [n["id"] for n in data["cases"]["nodes"] if n["cluster"] and n["cluster"]["caseCount"] == 1]
    return str(alone[skip])


def wait_states(graph: Graph, case_id: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        case = graph.data(SOURCES, {"id": case_id})["case"]
        if [w["state"] for w in case["writeBacks"]] == ["DELIVERED"] * count or time.monotonic() > deadline:
            return dict(case)
        time.sleep(0.2)


def test_a_cluster_across_12345_and_a_petition_reaches_both_systems(loop_gateway: Graph) -> None:
    center, labor = loop_gateway, loop_gateway.as_user("labor")
    hotline, petition = fresh(center, "hotline12345", 1), fresh(center, "petition")
    clusters = [center.data(CASE_CLUSTER, {"id": c})["case"]["cluster"]["id"] for c in (hotline, petition)]
    merged = center.data(
        "mutation($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id caseCount } } }", {"ids": clusters}
    )["mergeClusters"]["cluster"]
    assert merged["caseCount"] == 2
    answer = center.data(DISPATCH, {"input": {"clusterId": merged["id"], "departmentId": LABOR}})[
        "dispatchCluster"
    ]
    labor.data(SIGN, {"id": answer["assignment"]["id"]})
    labor.data(RESOLVE, {"input": {"clusterId": merged["id"], "reply": "已协调用人单位与职工达成一致"}})

    order = wait_states(center, hotline, 3)
    assert [w["kind"] for w in order["writeBacks"]] == ["SIGN", "REPLY", "RESOLVE"]
    assert order["source"]["statusWord"] == "已办结"
    letter = wait_states(center, petition, 3)
    assert [w["state"] for w in letter["writeBacks"]] == ["DELIVERED"] * 3
    assert letter["source"]["status"] == "已办结"

    for case_id in (hotline, petition):
        rated = center.data(
            EVALUATE,
            {"input": {"caseId": case_id, "rating": "BASICALLY_SATISFIED", "reportedByChannel": True}},
        )["evaluateCase"]
    assert rated["dispatch"]["status"] == "CLOSED"


def own_open_hotline_case(citizen: Graph) -> str:
    """The resident's 12345 appeal still being handled, found by her identity.

    Not by its id: the sandbox world is generated for the moment it starts, so which ticket of hers
    carries which number moves with the time of day.
    """
    data = citizen.data('{ myCases(first: 50, filter: { channels: ["hotline12345"] }) '
                        '{ nodes { id status } } }')
    finished = ("RESOLVED", "CLOSED", "REJECTED")
    still_open = [n["id"] for n in data["myCases"]["nodes"] if n["status"] not in finished]
    assert still_open, data
    return str(still_open[0])


def test_the_resident_rates_her_own_appeal(loop_gateway: Graph) -> None:
    center, labor, citizen = loop_gateway, loop_gateway.as_user("labor"), loop_gateway.as_user("citizen")
    case_id = own_open_hotline_case(citizen)
    answer = center.data(DISPATCH, {"input": {"clusterId": case_id, "departmentId": LABOR}})[
        "dispatchCluster"
    ]
    labor.data(SIGN, {"id": answer["assignment"]["id"]})
    early = citizen.query(EVALUATE, {"input": {"caseId": case_id, "rating": "SATISFIED"}})
    labor.data(RESOLVE, {"input": {"clusterId": case_id, "reply": "已维修漏水管道"}})
    rated = citizen.data(
        EVALUATE, {"input": {"caseId": case_id, "rating": "DISSATISFIED", "comment": "仍有渗水"}}
    )
    assert codes(early) == ["CONFLICT"]
    assert rated["evaluateCase"]["case"]["evaluation"]["rating"] == "DISSATISFIED"
    assert codes(citizen.query(EVALUATE, {"input": {"caseId": case_id, "rating": "SATISFIED"}})) == [
        "CONFLICT"
    ]
    assert codes(center.query(EVALUATE, {"input": {"caseId": case_id, "rating": "SATISFIED"}})) == [
        "FORBIDDEN"
    ]

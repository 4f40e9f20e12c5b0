"""Legal aid (法律援助): the GraphQL sandbox and the connector, a GraphQL client, over real HTTP (uvicorn).

Bearer auth, the SDL kept in sync with what is served, Relay keyset paging and resume, GraphQL errors
mapped to typed errors (UNAUTHENTICATED, LIMIT_EXCEEDED …), a partially broken node quarantined while
the others come through, batch lookup (≤25), +08:00 times, and idempotent feedback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from graphql import build_client_schema, build_schema, get_introspection_query, parse, print_schema, validate

from connectors import (
    AuthenticationFailed,
    BadRecord,
    ChangePage,
    ChannelConfig,
    ConfigError,
    RateLimited,
    UnifiedStatus,
    UpstreamRejected,
    UpstreamUnavailable,
    WriteBackAction,
    WriteBackKind,
)
from connectors.legalaid import (
    FieldError,
    GraphQLClient,
    LegalAidConnector,
    LegalAidSource,
    error_for,
    queries,
)
from sandbox.legalaid import create_app
from sandbox.legalaid.app import SCHEMA_FILE
from sandbox.world import Resident, Ticket
from tests.channels import drain, ids, knob
from tests.servers import serve

TOKEN = "sandbox-legalaid-token"
PLACES = [("玉塘街道", "长圳社区"), ("光明街道", "翠湖社区"), ("新湖街道", "楼村社区"),
          ("凤凰街道", "东坑社区")]
KINDS = [(("法律服务", "法律援助", "劳动争议", "讨薪法律援助"), "劳动仲裁代理"),
         (("法律服务", "法律援助", "人身损害", "人身损害赔偿援助"), "民事诉讼代理"),
         (("法律服务", "法律咨询", "婚姻家庭", "婚姻家庭咨询"), "法律咨询")]
NAMES = ["赵磊", "钱芳", "孙浩", "李婷", "周勇", "吴敏"]
STAGES = ["new", "accepted", "processing", "done", "closed", "rejected"]
EMPLOYER = Resident("O-00077", "深圳市光明区恒信精密制造有限公司", "0755-27654321", "91440300MA5G3L7Q2W")
BASE_TIME = datetime(2026, 11, 18, 2, 15, tzinfo=UTC)


def number(i: int) -> str:
    return f"FY-440311-2026-{300 + i:04d}"


def application(i: int, **changes: Any) -> Ticket:
    """A hand-made application number ``i`` (times a minute apart unless changed)."""
    street, community = PLACES[i % len(PLACES)]
    path, service = KINDS[i % len(KINDS)]
    name = NAMES[i % len(NAMES)]
    fields: dict[str, Any] = dict(
        channel="legalaid", source_id=number(i), incident_id=f"INC{i:04d}",
        resident=Resident(f"L{i:04d}", name, f"136{i:08d}", f"44031119900101{i:04d}"),
        title=f"{name}{path[-1]}申请",
        content=f"申请人{name}在恒信精密制造有限公司工作，公司拖欠工资{8000 + i}元，本人经济困难。",
        category_path=path, street=street, community=community,
        address=f"深圳市光明区{street}{community}光明大道{i}号", lat=None, lng=None,
        received_at=BASE_TIME + timedelta(minutes=i), updated_at=BASE_TIME + timedelta(minutes=i, seconds=40),
        stage=STAGES[i % len(STAGES)], extra={"aid_type": service, "applicant_type": "农民工"},
        other_party=EMPLOYER)
    fields.update(changes)
    return Ticket(**fields)


def applications(count: int, **changes: Any) -> list[Ticket]:
    return [application(i, **changes) for i in range(1, count + 1)]


def connector_for(url: str, *, token: str | None = TOKEN, timeout: float = 5, **options: Any
                  ) -> LegalAidConnector:
    credentials = {} if token is None else {"token": token}
    return LegalAidConnector(ChannelConfig(key="legalaid", connector="legalaid", name="法律援助",
                                           base_url=url, credentials=credentials, options=options,
                                           timeout=timeout))


@contextmanager
def legalaid(items: list[Ticket]) -> Iterator[str]:
    with serve(create_app(items)) as url:
        yield url


@asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[LegalAidConnector]:
    async with connector_for(url, **options) as connector:
        yield connector


def records(pages: list[ChangePage]) -> list[Any]:
    return [record for page in pages for record in page.records]


async def post(url: str, query: str, variables: dict[str, Any] | None = None, *, token: str | None = TOKEN
               ) -> httpx.Response:
    """A GraphQL request of the test's own (not the connector's)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{url}/graphql", json={"query": query, "variables": variables or {}},
                                 headers=headers)


async def graphql_requests(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return int((await client.get(f"{url}/__sandbox/stats")).json()["requests"].get("POST /graphql", 0))


def action(kind: WriteBackKind, action_id: str, source_id: str | None = None, **fields: Any
           ) -> WriteBackAction:
    return WriteBackAction(action_id=action_id, source_id=source_id or number(1), kind=kind,
                           actor=fields.get("actor", "光明区法律援助处 林律师"), department="光明区司法局",
                           message=fields.get("message", "已电话联系申请人，材料齐全"), at=BASE_TIME)


# -- paging, normalisation, resume --------------------------------------------------------------------
async def test_pages_to_the_end_and_normalises_every_field() -> None:
    items = applications(45)
    with legalaid(items) as url:
        async with connected(url, first=20) as connector:
            pages = await drain(connector)
    assert [len(p.records) for p in pages] == [20, 20, 5]
    assert ids(pages) == [t.source_id for t in items]
    assert not any(p.rejected for p in pages)
    record, source = pages[0].records[1], items[1]  # application 2: processing, 婚姻家庭咨询
    assert (record.title, record.content) == (source.title, source.content)
    assert (record.received_at, record.updated_at) == (source.received_at, source.updated_at)
    assert (record.place.street, record.place.community, record.place.address) == (
        source.street, source.community, source.address)
    assert record.category_hint == "婚姻家庭咨询"
    applicant, opponent = record.parties
    assert (applicant.role, applicant.name, applicant.phone, applicant.id_number) == (
        "申请人", source.resident.name, source.resident.phone, source.resident.id_number)
    assert (opponent.role, opponent.name, opponent.id_number, opponent.is_organisation) == (
        "对方当事人", EMPLOYER.name, EMPLOYER.id_number, True)
    assert record.extra == {"援助类型": "民事", "援助事项类别": "法律咨询", "申请人类别": "农民工",
                            "审查决定": "GRANTED"}
    assert (record.status, record.source_status) == (UnifiedStatus.IN_PROGRESS, "LAWYER_ASSIGNED/GRANTED")


async def test_status_and_review_decision_map_to_the_unified_lifecycle() -> None:
    items = applications(24)  # four of each stage; a third of the closed ones were withdrawn
    with legalaid(items) as url:
        async with connected(url) as connector:
            await connector.write_back(action(WriteBackKind.RETURN, "ret-1", source_id=number(1)))
            pages = await drain(connector)
    seen = {(r.source_status, r.status) for r in records(pages)}
    unified = UnifiedStatus
    assert seen == {("RECEIVED/PENDING", unified.SUBMITTED), ("UNDER_REVIEW/PENDING", unified.ACCEPTED),
                    ("LAWYER_ASSIGNED/GRANTED", unified.IN_PROGRESS), ("CLOSED/GRANTED", unified.RESOLVED),
                    ("CLOSED/WITHDRAWN", unified.CLOSED), ("CLOSED/DENIED", unified.REJECTED),
                    ("CLOSED/PENDING", unified.RETURNED)}


async def test_beijing_offsets_become_utc_instants() -> None:
    instant = datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC)  # 2027-01-01 00:00:00 in Beijing
    with legalaid([application(1, received_at=instant, updated_at=instant)]) as url:
        raw = (await post(url, "{ applications { edges { node { submittedAt updatedAt } } } }")).json()
        async with connected(url) as connector:
            (page,) = await drain(connector)
    assert raw["data"]["applications"]["edges"][0]["node"] == {"submittedAt": "2027-01-01T00:00:00+08:00",
                                                               "updatedAt": "2027-01-01T00:00:00+08:00"}
    assert page.records[0].received_at == instant
    assert page.records[0].received_at.utcoffset() == timedelta(0)


async def test_a_since_option_in_any_offset_starts_there() -> None:
    items = applications(10)
    since = (items[6].updated_at - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    with legalaid(items) as url:
        async with connected(url, since=since) as connector:
            pages = await drain(connector)
    assert ids(pages) == [t.source_id for t in items[6:]]


async def test_resumes_from_a_saved_cursor_without_loss_or_duplicates() -> None:
    items = applications(30)
    with legalaid(items) as url:
        async with connected(url, first=8) as connector:
            first = await anext(connector.changes(None))
        async with connected(url, first=8) as restarted:
            rest = await drain(restarted, first.cursor)
            assert ids([first, *rest]) == [t.source_id for t in items]
            assert ids(await drain(restarted, rest[-1].cursor)) == []
            await restarted.write_back(action(WriteBackKind.SIGN, "resume-1", source_id=number(6)))
            changed = await drain(restarted, rest[-1].cursor)
    assert ids(changed) == [number(6)]  # RECEIVED → UNDER_REVIEW by the ACCEPT
    assert (changed[0].records[0].status, changed[0].records[0].source_status) == (
        UnifiedStatus.ACCEPTED, "UNDER_REVIEW/PENDING")


async def test_applications_sharing_one_instant_page_exactly_once() -> None:
    items = applications(30, updated_at=BASE_TIME + timedelta(hours=2))
    with legalaid(items) as url:
        cursor, piecewise = None, []
        for _ in range(10):  # resume after every single page
            async with connected(url, first=7) as connector:
                page = await anext(connector.changes(cursor))
            piecewise += [r.source_id for r in page.records]
            cursor = page.cursor
            if not page.records:
                break
    assert piecewise == sorted(t.source_id for t in items)


# -- the contract -------------------------------------------------------------------------------------
async def test_the_served_schema_is_the_sdl_file_and_the_connector_documents_validate() -> None:
    with legalaid([]) as url:
        document = get_introspection_query(descriptions=True, schema_description=True)
        introspection = (await post(url, document)).json()
    served = print_schema(build_client_schema(introspection["data"]))
    written = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert served == print_schema(written)
    for document in (queries.APPLICATIONS, queries.APPLICATIONS_BY_NO, queries.RECORD_FEEDBACK):
        assert validate(written, parse(document)) == []


# -- auth and GraphQL errors --------------------------------------------------------------------------
async def test_a_missing_or_wrong_token_is_401_and_authentication_failed() -> None:
    with legalaid(applications(2)) as url:
        missing = await post(url, "{ applicationsByNo(nos: []) { applicationNo } }", token=None)
        wrong = await post(url, "{ applicationsByNo(nos: []) { applicationNo } }", token="guess")
        async with connected(url, token="guess") as connector:
            with pytest.raises(AuthenticationFailed):
                await drain(connector)
            with pytest.raises(AuthenticationFailed):
                await connector.get_many([number(1)])
            with pytest.raises(AuthenticationFailed):
                await connector.write_back(action(WriteBackKind.SIGN, "auth-1"))
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json()["data"] is None
        assert answer.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_graphql_errors_without_data_become_typed_errors() -> None:
    with legalaid(applications(2)) as url:
        too_many = await post(url, "query($nos: [ID!]!) { applicationsByNo(nos: $nos) { applicationNo } }",
                              {"nos": [number(i) for i in range(26)]})
        async with connected(url) as connector:
            client = GraphQLClient(connector.client)
            with pytest.raises(UpstreamRejected, match="LIMIT_EXCEEDED"):
                await client.field("applicationsByNo", queries.APPLICATIONS_BY_NO,
                                   {"nos": [number(i) for i in range(26)]})
            with pytest.raises(UpstreamRejected, match="GRAPHQL_VALIDATION_FAILED"):
                await client.execute("{ applications { edges { node { nickname } } } }")
            with pytest.raises(UpstreamRejected, match="BAD_USER_INPUT"):
                await client.execute(queries.APPLICATIONS, {"since": "2026-11-18 10:00", "first": 5})
            with pytest.raises(UpstreamRejected, match="BAD_USER_INPUT"):
                await client.execute(queries.APPLICATIONS, {"after": "not-a-cursor", "first": 5})
    assert too_many.status_code == 200
    assert too_many.json()["data"] is None
    assert too_many.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_error_codes_are_classified_by_what_the_gateway_should_do() -> None:
    def mapped(*codes: str | None) -> type:
        return type(error_for([FieldError("x", code=code, extensions={"retryAfter": 3}) for code in codes],
                              "test"))

    assert mapped("UNAUTHENTICATED") is AuthenticationFailed
    assert mapped("FORBIDDEN") is AuthenticationFailed
    assert mapped("LIMIT_EXCEEDED") is UpstreamRejected
    assert mapped("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED") is UpstreamRejected
    assert mapped("RATE_LIMITED") is RateLimited
    assert mapped("INTERNAL_SERVER_ERROR") is UpstreamUnavailable
    assert mapped(None) is UpstreamUnavailable
    assert mapped("BAD_USER_INPUT", "INTERNAL_SERVER_ERROR") is UpstreamUnavailable
    assert mapped() is UpstreamUnavailable
    rate = error_for([FieldError("slow down", code="RATE_LIMITED", extensions={"retryAfter": 3})], "t")
    assert isinstance(rate, RateLimited)
    assert rate.retry_after == 3


def test_configuration_problems_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        connector_for("http://127.0.0.1:9", token=None, first=500, since="2026-11-18 10:00:00")
    assert len(caught.value.problems) == 3


# -- broken nodes -------------------------------------------------------------------------------------
async def test_a_partially_broken_node_is_quarantined_while_the_others_come_through() -> None:
    naive = datetime(2026, 11, 18, 10, 16)  # stored without a zone: the schema cannot render submittedAt
    items = [application(1), application(2, received_at=naive), application(3, stage="suspended"),
             application(4)]
    with legalaid(items) as url:
        async with connected(url) as connector:
            (page,) = await drain(connector)
            detail = await connector.get_many([number(2), number(4)])
    assert ids([page]) == [number(1), number(4)]
    first, second = page.rejected
    assert isinstance(first, BadRecord)
    assert first.source_id == number(2)  # the node is there in part: its number and the fields that rendered
    assert first.reason.startswith("submittedAt: DateTime cannot represent a time without a zone")
    assert first.raw["submittedAt"] is None
    assert first.raw["matter"] == items[1].content
    assert isinstance(second, BadRecord)
    assert second.source_id is None  # a non-null field broke: the whole node is null
    assert second.reason.startswith("status: Enum 'ApplicationStatus' cannot represent value")
    assert "cursor" in second.raw
    shown = detail[number(2)]
    assert isinstance(shown, LegalAidSource)  # the live view keeps what rendered
    assert (shown.submitted_at, shown.matter) == (None, items[1].content)
    assert isinstance(detail[number(4)], LegalAidSource)


# -- batch, faults, timeouts --------------------------------------------------------------------------
async def test_batch_lookup_honours_the_limit_of_twenty_five() -> None:
    items = applications(55)
    asked = [t.source_id for t in items] + ["FY-440311-2099-0001", "FY-440311-2099-0002"]
    with legalaid(items) as url:
        async with connected(url) as connector:
            assert connector.describe().capabilities.batch_limit == 25
            assert connector.describe().capabilities.push is False
            assert connector.describe().kind == "graphql"
            before = await graphql_requests(url)
            found = await connector.get_many(asked)
            assert await graphql_requests(url) - before == 3  # 57 ids → 25 + 25 + 7
    assert set(found) == set(asked)
    assert found["FY-440311-2099-0001"] is None
    record = found[number(2)]
    assert isinstance(record, LegalAidSource)
    assert (record.status, record.review_decision, record.updated_at) == (
        "LAWYER_ASSIGNED", "GRANTED", items[1].updated_at)
    assert record.assigned_lawyer is not None
    assert record.updated_at_text == "2026-11-18T10:17:40+08:00"
    assert record.applicant is not None
    assert record.applicant.id_card == items[1].resident.id_number
    assert record.opponent is not None
    assert (record.opponent.credit_code, record.opponent.is_organisation) == (EMPLOYER.id_number, True)


async def test_channel_down_is_upstream_unavailable_and_429_is_rate_limited() -> None:
    with legalaid(applications(2)) as url:
        async with connected(url) as connector:
            await knob(url, "faults", down=True)
            with pytest.raises(UpstreamUnavailable):
                await drain(connector)
            await knob(url, "faults", reset=True, rate_429=1.0)
            with pytest.raises(RateLimited):
                await connector.get_many([number(1)])
            await knob(url, "faults", reset=True, error_rate=1.0)
            with pytest.raises(UpstreamUnavailable):
                await connector.write_back(action(WriteBackKind.REPLY, "down-1"))
            await knob(url, "faults", reset=True)
            assert len(ids(await drain(connector))) == 2


async def test_the_configured_timeout_applies() -> None:
    with legalaid(applications(2)) as url:
        await knob(url, "faults", latency_ms=800)
        async with connected(url, timeout=0.2) as connector:
            with pytest.raises(UpstreamUnavailable, match="timed out"):
                await connector.get_many([number(1)])


# -- write-back ---------------------------------------------------------------------------------------
async def test_feedback_is_recorded_once_per_request_id() -> None:
    with legalaid(applications(6)) as url:  # application 1 is UNDER_REVIEW, 3 is CLOSED/GRANTED
        async with connected(url) as connector:
            reply = action(WriteBackKind.REPLY, "fb-1")
            first = await connector.write_back(reply)
            again = await connector.write_back(reply)
            signed = await connector.write_back(action(WriteBackKind.SIGN, "fb-2"))
            done = await connector.write_back(action(WriteBackKind.RESOLVE, "fb-3", message="已调解结案"))
            refused = action(WriteBackKind.RETURN, "fb-4", source_id=number(3))
            with pytest.raises(UpstreamRejected, match="INVALID_STATE"):
                await connector.write_back(refused)
            unknown = action(WriteBackKind.SIGN, "fb-5", source_id="FY-440311-2099-0001")
            with pytest.raises(UpstreamRejected, match="NOT_FOUND"):
                await connector.write_back(unknown)
            detail = (await connector.get_many([number(1)]))[number(1)]
    assert (first.duplicate, again.duplicate, signed.duplicate, done.duplicate) == (False, True, False, False)
    assert (first.source_status, signed.source_status, done.source_status) == (
        "UNDER_REVIEW/PENDING", "UNDER_REVIEW/PENDING", "CLOSED/GRANTED")
    assert isinstance(detail, LegalAidSource)
    assert [(f.request_id, f.kind) for f in detail.feedback] == [("fb-1", "PROGRESS"), ("fb-2", "ACCEPT"),
                                                                 ("fb-3", "CLOSE")]
    assert detail.feedback[0].operator == "光明区法律援助处 林律师"
    assert detail.feedback[2].message == "已调解结案"
    assert all(f.at is not None and f.at.utcoffset() == timedelta(0) for f in detail.feedback)


# -- the seeded world ---------------------------------------------------------------------------------
async def test_the_generated_world_syncs_cleanly() -> None:
    from sandbox.world import generate_world

    world = generate_world(7, datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    items = world.tickets_for("legalaid")
    with legalaid(items) as url:
        await knob(url, "arrive")
        async with connected(url) as connector:
            pages = await drain(connector)
            sample = await connector.get_many([t.source_id for t in items[:25]])
    assert [bad.reason for page in pages for bad in page.rejected] == []
    assert sorted(ids(pages)) == sorted(t.source_id for t in items)
    assert all(isinstance(record, LegalAidSource) for record in sample.values())
    assert any(r.category_hint == "讨薪法律援助" for r in records(pages))

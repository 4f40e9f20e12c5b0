"""The court's pre-litigation mediation platform (诉前调解): sandbox and connector over real HTTP (uvicorn).

HMAC request signing (tampered body/query, stale timestamps and replayed nonces refused; Chinese in
paths, queries and bodies signed right), case numbers with Chinese in paths, offset paging that shifts
while cases change, mediation states, UTC ISO-8601 times, batch get (≤20) and idempotent feedback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

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
from connectors.court import CourtConnector, CourtSource, HmacSigner, canonical_request
from sandbox.court import create_app
from sandbox.court.security import canonical_string
from sandbox.world import Resident, Ticket
from tests.channels import drain, ids, knob, stats
from tests.servers import serve

APP_KEY, APP_SECRET = "minsheng-gateway", "sandbox-court-secret"
PLACES = [("玉塘街道", "田寮社区"), ("公明街道", "上村社区"), ("凤凰街道", "塘家社区"),
          ("马田街道", "合水口社区")]
KINDS = [(("纠纷调解", "劳动纠纷", "劳动报酬", "拖欠工资"), "劳动争议"),
         (("纠纷调解", "合同纠纷", "租赁合同", "房屋租赁纠纷"), "房屋租赁合同纠纷"),
         (("纠纷调解", "物业纠纷", "物业费", "物业费纠纷"), "物业服务合同纠纷")]
NAMES = ["张伟", "李娜", "王强", "刘洋", "陈静", "杨帆"]
STAGES = ["new", "accepted", "processing", "done", "closed", "rejected"]
COMPANY = Resident("O-00042", "深圳市光明区宏达电子有限公司", "0755-23456789", "91440300MA5F8K2X3T")
BASE_TIME = datetime(2026, 11, 18, 2, 15, tzinfo=UTC)


def case_no(i: int) -> str:
    return f"(2026)粤0311民诉前调{1000 + i}号"


def mediation(i: int, **changes: Any) -> Ticket:
    """A hand-made case number ``i`` (times a minute apart unless changed)."""
    street, community = PLACES[i % len(PLACES)]
    path, legal_cause = KINDS[i % len(KINDS)]
    name = NAMES[i % len(NAMES)]
    resident = Resident(f"C{i:04d}", name, f"137{i:08d}", f"44030619880712{i:04d}")
    fields: dict[str, Any] = dict(
        channel="court", source_id=case_no(i), incident_id=f"INC{i:04d}", resident=resident,
        title=f"{name}与深圳市光明区宏达电子有限公司{legal_cause}",
        content=f"申请人{name}诉称，被申请人拖欠其工资共计{12000 + i}元，现申请诉前调解，请求支付欠款。",
        category_path=path, street=street, community=community,
        address=f"深圳市光明区{street}{community}华夏路{i}号", lat=None, lng=None,
        received_at=BASE_TIME + timedelta(minutes=i), updated_at=BASE_TIME + timedelta(minutes=i, seconds=30),
        stage=STAGES[i % len(STAGES)], extra={"claim_amount": 12000 + i, "cause": legal_cause},
        other_party=COMPANY)
    fields.update(changes)
    return Ticket(**fields)


def mediations(count: int, **changes: Any) -> list[Ticket]:
    return [mediation(i, **changes) for i in range(1, count + 1)]


def connector_for(url: str, *, secret: str | None = APP_SECRET, timeout: float = 5, **options: Any
                  ) -> CourtConnector:
    credentials = {"app_key": APP_KEY} if secret is None else {"app_key": APP_KEY, "app_secret": secret}
    return CourtConnector(ChannelConfig(key="court", connector="court", name="诉前调解", base_url=url,
                                        credentials=credentials, options=options, timeout=timeout))


@contextmanager
def court(items: list[Ticket]) -> Iterator[str]:
    with serve(create_app(items)) as url:
        yield url


@asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[CourtConnector]:
    async with connector_for(url, **options) as connector:
        yield connector


@asynccontextmanager
async def signed_client(url: str, signer: HmacSigner | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the test's own that signs like the connector (or not at all with ``signer=None``)."""
    async with httpx.AsyncClient(base_url=url, timeout=10, auth=signer) as client:
        yield client


def signer(**kwargs: Any) -> HmacSigner:
    return HmacSigner(APP_KEY, APP_SECRET, **kwargs)


def action(kind: WriteBackKind, action_id: str, source_id: str | None = None, **fields: Any
           ) -> WriteBackAction:
    return WriteBackAction(action_id=action_id, source_id=source_id or case_no(2), kind=kind,
                           actor=fields.get("actor", "光明区人民调解委员会 李秀英"),
                           department=fields.get("department", "光明区司法局"),
                           message=fields.get("message", "已联系双方当事人，定于周五调解"), at=BASE_TIME)


# -- paging, normalisation, resume --------------------------------------------------------------------
async def test_pages_to_the_end_and_normalises_every_field() -> None:
    items = mediations(45)
    with court(items) as url:
        async with connected(url, limit=20) as connector:
            pages = await drain(connector)
    assert ids(pages) == [t.source_id for t in items]
    assert not any(p.rejected for p in pages)
    record, source = pages[0].records[2], items[2]  # case 3: 调解成功, 劳动争议
    assert (record.title, record.content) == (source.title, source.content)
    assert (record.received_at, record.updated_at) == (source.received_at, source.updated_at)
    assert (record.place.street, record.place.community, record.place.address) == (
        source.street, source.community, source.address)
    assert record.category_hint == source.category_path[-1]  # 案由 as the leaf label, e.g. 拖欠工资
    applicant, respondent = record.parties
    assert (applicant.role, applicant.name, applicant.phone, applicant.id_number) == (
        "申请人", source.resident.name, source.resident.phone, source.resident.id_number)
    assert not applicant.is_organisation
    assert (respondent.role, respondent.name, respondent.id_number, respondent.is_organisation) == (
        "被申请人", COMPANY.name, COMPANY.id_number, True)
    assert record.extra == {"标的额": 12003.0, "法定案由": "劳动争议", "调解结果": "成功",
                            "委派法院": "深圳市光明区人民法院"}


async def test_mediation_states_map_to_the_unified_lifecycle() -> None:
    items = mediations(60)  # ten of each stage: closed ones are 调解失败 or, for about a third, 已撤回
    with court(items) as url:
        async with connected(url) as connector:
            await connector.write_back(action(WriteBackKind.RETURN, "ret-1", source_id=case_no(1)))
            pages = await drain(connector)
    seen = {(r.source_status, r.status, r.extra["调解结果"]) for r in ids_records(pages)}
    unified = UnifiedStatus
    assert seen == {("待分配", unified.SUBMITTED, None), ("已分配", unified.ACCEPTED, None),
                    ("调解中", unified.IN_PROGRESS, None), ("调解成功", unified.RESOLVED, "成功"),
                    ("调解失败", unified.CLOSED, "失败"), ("已撤回", unified.CLOSED, "撤回"),
                    ("不予受理", unified.REJECTED, "不予受理"), ("已退回", unified.RETURNED, "退回")}


def ids_records(pages: list[ChangePage]) -> list[Any]:
    return [record for page in pages for record in page.records]


async def test_times_are_utc_iso_with_z_and_come_out_aware() -> None:
    instant = datetime(2026, 12, 31, 16, 0, 0, 123000, tzinfo=UTC)  # 2027-01-01 00:00:00.123 in Beijing
    with court([mediation(1, received_at=instant, updated_at=instant)]) as url:
        async with signed_client(url, signer()) as client:
            raw = (await client.get("/api/v2/mediations")).json()["items"][0]
        async with connected(url) as connector:
            (page,) = await drain(connector)
    assert (raw["createdAt"], raw["updatedAt"]) == ("2026-12-31T16:00:00.123Z", "2026-12-31T16:00:00.123Z")
    assert page.records[0].received_at == instant
    assert page.records[0].received_at.utcoffset() == timedelta(0)


async def test_resumes_from_a_saved_cursor_without_loss_or_duplicates() -> None:
    items = mediations(30)
    with court(items) as url:
        async with connected(url, limit=8) as connector:
            first = await anext(connector.changes(None))
        async with connected(url, limit=8) as restarted:
            rest = await drain(restarted, first.cursor)
            assert ids([first, *rest]) == [t.source_id for t in items]
            assert ids(await drain(restarted, rest[-1].cursor)) == []
            await restarted.write_back(action(WriteBackKind.SIGN, "resume-1", source_id=case_no(6)))
            changed = await drain(restarted, rest[-1].cursor)
    assert ids(changed) == [case_no(6)]  # 待分配 → 已分配 by the ACCEPT
    assert (changed[0].records[0].status, changed[0].records[0].source_status) == (
        UnifiedStatus.ACCEPTED, "已分配")


async def test_cases_changing_while_paging_are_not_lost_where_offsets_would_lose_them() -> None:
    items = mediations(12)
    with court(items) as url:
        async with signed_client(url, signer()) as client:
            naive_first = [c["caseNo"] for c in (await client.get(
                "/api/v2/mediations", params={"offset": 0, "limit": 5})).json()["items"]]
            async with connected(url, limit=5) as connector:
                pages = []
                async for page in connector.changes(None):
                    pages.append(page)
                    if len(pages) == 1:  # a case from the first page changes: it moves to the end
                        moved = action(WriteBackKind.REPLY, "move-1", source_id=case_no(1))
                        await connector.write_back(moved)
            naive_second = [c["caseNo"] for c in (await client.get(
                "/api/v2/mediations", params={"offset": 5, "limit": 5})).json()["items"]]
    assert case_no(6) not in naive_first + naive_second  # plain offsets skip the case that slid back
    assert ids(pages) == [t.source_id for t in items] + [case_no(1)]


async def test_more_cases_at_one_instant_than_fit_a_page_are_each_delivered_once() -> None:
    items = mediations(30, updated_at=BASE_TIME + timedelta(hours=2))
    with court(items) as url:
        async with connected(url, limit=7) as connector:
            whole = await drain(connector)
        cursor, piecewise = None, []
        for _ in range(20):  # resume after every single page
            async with connected(url, limit=7) as connector:
                page = await anext(connector.changes(cursor))
            piecewise += [r.source_id for r in page.records]
            cursor = page.cursor
            if not page.records and len(piecewise) == 30:
                break
    assert sorted(ids(whole)) == sorted(piecewise) == sorted(t.source_id for t in items)
    assert len(piecewise) == 30


# -- signing ------------------------------------------------------------------------------------------
def test_the_signer_writes_the_documented_canonical_string() -> None:
    flow = signer(clock=lambda: 1795000000.123, nonces=["nonce-0001"])
    body = '{"caseNo":"(2026)粤0311民诉前调1234号","content":"已组织调解"}'.encode()
    request = httpx.Request("POST", "http://court.example/gw/api/v2/mediations/(2026)粤0311民诉前调1234号",
                            params=[("z", "二"), ("a", "b c/d"), ("a", "a+1")], content=body)
    flow.sign(request)
    path = "/gw/api/v2/mediations/%282026%29" + quote("粤0311民诉前调1234号")
    expected = "\n".join(["POST", path, "a=a%2B1&a=b%20c%2Fd&z=%E4%BA%8C", "1795000000123", "nonce-0001",
                          hashlib.sha256(body).hexdigest()])
    assert canonical_request(request, "1795000000123", "nonce-0001") == expected
    # the sandbox's own implementation, written independently, agrees (from what a server sees)
    assert canonical_string("POST", request.url.raw_path.decode().partition("?")[0],
                            [("z", "二"), ("a", "b c/d"), ("a", "a+1")], "1795000000123", "nonce-0001",
                            body) == expected
    digest = hmac.new(APP_SECRET.encode(), expected.encode(), hashlib.sha256).digest()
    assert request.headers["X-Signature"] == base64.b64encode(digest).decode()
    assert (request.headers["X-App-Key"], request.headers["X-Timestamp"], request.headers["X-Nonce"]) == (
        APP_KEY, "1795000000123", "nonce-0001")


async def test_chinese_in_paths_queries_and_bodies_is_signed_so_the_platform_accepts_it() -> None:
    items = mediations(8)
    with court(items) as url:
        async with connected(url) as connector:
            one = await connector.client.get(f"/api/v2/mediations/{quote(case_no(3), safe='')}")
            unencoded = await connector.client.get(f"/api/v2/mediations/{case_no(3)}")  # httpx encodes
            in_street = await connector.client.get("/api/v2/mediations", params={"street": "玉塘街道"})
            result = await connector.write_back(action(WriteBackKind.REPLY, "zh-1", source_id=case_no(3),
                                                       message="已组织双方调解，约定分三期支付欠薪¥12,003元。"))
            detail = (await connector.get_many([case_no(3)]))[case_no(3)]
    assert (one.status_code, unencoded.status_code) == (200, 200)
    assert one.json()["caseNo"] == unencoded.json()["caseNo"] == case_no(3)
    assert in_street.status_code == 200
    assert {c["street"] for c in in_street.json()["items"]} == {"玉塘街道"}
    assert in_street.json()["total"] == 2
    assert (result.accepted, result.duplicate) == (True, False)
    assert isinstance(detail, CourtSource)
    assert detail.feedbacks[0].content == "已组织双方调解，约定分三期支付欠薪¥12,003元。"


async def test_a_tampered_body_or_query_is_refused() -> None:
    with court(mediations(3)) as url:
        async with signed_client(url) as client:
            good = httpx.Request("POST", f"{url}/api/v2/mediations:batchGet", json={"caseNos": [case_no(1)]})
            signer().sign(good)
            forged_body = httpx.Request("POST", good.url, headers=good.headers,
                                        json={"caseNos": [case_no(2)]})
            forged_body.headers["Content-Length"] = str(len(forged_body.content))
            body_answer = await client.send(forged_body)
            listing = httpx.Request("GET", f"{url}/api/v2/mediations", params={"limit": 1})
            signer().sign(listing)
            forged_query = httpx.Request("GET", f"{url}/api/v2/mediations", params={"limit": 50},
                                         headers=listing.headers)
            query_answer = await client.send(forged_query)
            unsigned = await client.get("/api/v2/mediations")
            honest = await client.send(good)
    assert (body_answer.status_code, body_answer.json()["errcode"]) == (401, 40101)
    assert (query_answer.status_code, query_answer.json()["errcode"]) == (401, 40101)
    assert (unsigned.status_code, unsigned.json()["errcode"]) == (401, 40101)
    assert honest.status_code == 200  # the original, never sent before, still passes


async def test_a_timestamp_more_than_300_seconds_off_is_refused() -> None:
    with court(mediations(2)) as url:
        answers = []
        for skew in (-301, 301, -250):
            async with signed_client(url, signer(clock=lambda skew=skew: time.time() + skew)) as client:
                answers.append(await client.get("/api/v2/mediations"))
        async with connected(url) as connector:
            connector.auth.clock = lambda: time.time() - 3600  # the gateway's clock is an hour slow
            with pytest.raises(AuthenticationFailed):
                await drain(connector)
    assert [(a.status_code, a.json().get("errcode")) for a in answers] == [(401, 40102), (401, 40102),
                                                                            (200, None)]


async def test_a_replayed_nonce_is_refused() -> None:
    with court(mediations(2)) as url:
        async with signed_client(url, signer(nonces=["once", "once", "twice"])) as client:
            first = await client.get("/api/v2/mediations")
            reused = await client.get("/api/v2/mediations")
            fresh = await client.get("/api/v2/mediations")
        async with signed_client(url) as client:
            request = httpx.Request("GET", f"{url}/api/v2/mediations", params={"limit": 3})
            signer().sign(request)
            original = await client.send(request)
            replayed = await client.send(request)  # byte for byte the same request again
    assert [first.status_code, fresh.status_code, original.status_code] == [200, 200, 200]
    assert (reused.status_code, reused.json()["errcode"]) == (401, 40103)
    assert (replayed.status_code, replayed.json()["errcode"]) == (401, 40103)


async def test_wrong_credentials_are_authentication_failed() -> None:
    with court(mediations(2)) as url:
        async with signed_client(url, HmacSigner("someone-else", APP_SECRET)) as unknown:
            unknown_key = await unknown.get("/api/v2/mediations")
        async with connected(url, secret="guess") as connector:
            with pytest.raises(AuthenticationFailed):
                await drain(connector)
            with pytest.raises(AuthenticationFailed):
                await connector.get_many([case_no(1)])
            with pytest.raises(AuthenticationFailed):
                await connector.write_back(action(WriteBackKind.SIGN, "auth-1"))
    assert (unknown_key.status_code, unknown_key.json()) == (401, {"errcode": 40101, "errmsg": "AppKey无效"})


def test_configuration_problems_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        connector_for("http://127.0.0.1:9", secret=None, limit=80, since="2026-11-18 10:00:00")
    assert len(caught.value.problems) == 3
    from_yaml = yaml.safe_load("since: 2026-11-18T10:00:00+08:00")["since"]  # YAML makes a datetime of it
    assert connector_for("http://127.0.0.1:9", since=from_yaml).since == datetime(2026, 11, 18, 2, tzinfo=UTC)


# -- batch, faults, timeouts --------------------------------------------------------------------------
async def test_batch_get_honours_the_limit_of_twenty() -> None:
    items = mediations(45)
    asked = [t.source_id for t in items] + ["(2099)粤0311民诉前调1号", "(2099)粤0311民诉前调2号"]
    with court(items) as url:
        async with connected(url) as connector:
            assert connector.describe().capabilities.batch_limit == 20
            assert connector.describe().capabilities.push is False
            found = await connector.get_many(asked)
        assert (await stats(url))["POST /api/v2/mediations:batchGet"] == 3  # 47 ids → 20 + 20 + 7
        async with signed_client(url, signer()) as client:
            too_many = await client.post("/api/v2/mediations:batchGet", json={"caseNos": asked[:21]})
    assert (too_many.status_code, too_many.json()["errcode"]) == (400, 40002)
    assert set(found) == set(asked)
    assert found["(2099)粤0311民诉前调1号"] is None
    record = found[case_no(2)]
    assert isinstance(record, CourtSource)
    assert (record.title, record.state, record.updated_at) == (items[1].title, "调解中", items[1].updated_at)
    assert str(record.claim_amount) == "12002.00"
    assert record.mediator is not None
    assert record.court == "深圳市光明区人民法院"
    assert [p.role for p in record.parties] == ["申请人", "被申请人"]
    assert record.due_at == items[1].received_at + timedelta(days=30)


async def test_channel_down_is_upstream_unavailable_and_429_is_rate_limited() -> None:
    with court(mediations(2)) as url:
        async with connected(url) as connector:
            await knob(url, "faults", down=True)
            with pytest.raises(UpstreamUnavailable):
                await drain(connector)
            await knob(url, "faults", reset=True, rate_429=1.0)
            with pytest.raises(RateLimited):
                await connector.get_many([case_no(1)])
            await knob(url, "faults", reset=True)
            assert len(ids(await drain(connector))) == 2


async def test_the_configured_timeout_applies() -> None:
    with court(mediations(2)) as url:
        await knob(url, "faults", latency_ms=800)
        async with connected(url, timeout=0.2) as connector:
            with pytest.raises(UpstreamUnavailable, match="timed out"):
                await connector.get_many([case_no(1)])


# -- malformed records --------------------------------------------------------------------------------
async def test_a_malformed_case_is_rejected_with_its_reason_while_the_others_come_through() -> None:
    naive = datetime(2026, 11, 18, 10, 16)  # migrated from the old system without a zone
    items = [mediation(1), mediation(2, extra={"claim_amount": "十二万", "cause": "劳动争议"}),
             mediation(3, received_at=naive), mediation(4, stage="暂停调解"), mediation(5)]
    with court(items) as url:
        async with connected(url) as connector:
            (page,) = await drain(connector)
            detail = await connector.get_many([case_no(2), case_no(3)])
    assert ids([page]) == [case_no(1), case_no(5)]
    rejected = {bad.source_id: bad for bad in page.rejected}
    assert all(isinstance(bad, BadRecord) for bad in rejected.values())
    assert "claimAmount is not a number" in rejected[case_no(2)].reason
    assert "no time zone" in rejected[case_no(3)].reason
    assert "unknown mediation state '暂停调解'" in rejected[case_no(4)].reason
    assert rejected[case_no(3)].raw["createdAt"] == "2026-11-18T10:16:00.000"
    shown = detail[case_no(3)]
    assert isinstance(shown, CourtSource)  # the live view is lenient: what is unreadable stays empty
    assert (shown.created_at, shown.created_at_text) == (None, "2026-11-18T10:16:00.000")


# -- write-back ---------------------------------------------------------------------------------------
async def test_write_back_is_applied_once_per_request_id() -> None:
    with court(mediations(6)) as url:  # case 2 is 调解中, case 6 待分配
        async with connected(url) as connector:
            reply = action(WriteBackKind.REPLY, "fb-1")
            first = await connector.write_back(reply)
            again = await connector.write_back(reply)
            done = await connector.write_back(action(WriteBackKind.RESOLVE, "fb-2", message="达成调解协议"))
            with pytest.raises(UpstreamRejected):  # 调解成功 cannot be returned
                await connector.write_back(action(WriteBackKind.RETURN, "fb-3"))
            unknown = action(WriteBackKind.SIGN, "fb-4", source_id="(2099)粤0311民诉前调1号")
            with pytest.raises(UpstreamRejected):
                await connector.write_back(unknown)
            signed = await connector.write_back(action(WriteBackKind.SIGN, "fb-5", source_id=case_no(6)))
            detail = (await connector.get_many([case_no(2)]))[case_no(2)]
    assert (first.duplicate, again.duplicate, done.duplicate) == (False, True, False)
    assert (first.source_status, again.source_status, done.source_status) == ("调解中", "调解中", "调解成功")
    assert signed.source_status == "已分配"
    assert isinstance(detail, CourtSource)
    assert [(f.request_id, f.type) for f in detail.feedbacks] == [("fb-1", "PROGRESS"), ("fb-2", "CLOSE")]
    assert (detail.feedbacks[0].operator, detail.feedbacks[0].department) == (
        "光明区人民调解委员会 李秀英", "光明区司法局")
    assert detail.feedbacks[1].content == "达成调解协议"
    assert detail.state == "调解成功"


# -- the contract -------------------------------------------------------------------------------------


# -- the seeded world ---------------------------------------------------------------------------------
async def test_the_generated_world_syncs_cleanly() -> None:
    from sandbox.world import generate_world

    world = generate_world(7, datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    items = world.tickets_for("court")
    with court(items) as url:
        await knob(url, "arrive")
        async with connected(url) as connector:
            pages = await drain(connector)
            sample = await connector.get_many([t.source_id for t in items[:20]])
    assert [bad.reason for page in pages for bad in page.rejected] == []
    assert sorted(ids(pages)) == sorted(t.source_id for t in items)
    assert all(isinstance(record, CourtSource) for record in sample.values())

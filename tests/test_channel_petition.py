"""The petition system (信访): sandbox and connector over real HTTP (uvicorn).

SOAP 1.1 with WS-Security UsernameToken (PasswordDigest, fresh Created, single-use nonces), faults mapped
to typed errors, hostile XML (billion laughs, XXE) refused unexpanded, modified-time windows with page
numbers and resume, batch get (≤30), idempotent feedback by 流水号, yyyyMMddHHmmss Beijing time → UTC.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import sandbox.petition as sandbox_package
from connectors import (
    AuthenticationFailed,
    BadRecord,
    ChannelConfig,
    ConfigError,
    RateLimited,
    UnifiedStatus,
    UpstreamRejected,
    UpstreamUnavailable,
    WriteBackAction,
    WriteBackKind,
)
from connectors.petition import PetitionConnector, PetitionSource, UsernameToken
from connectors.petition.records import parse_time
from connectors.petition.soap import SOAP_ACTION_PREFIX
from sandbox.petition import create_app
from sandbox.world import Resident, Ticket
from tests.channels import call, drain, ids, knob
from tests.servers import serve

CREDENTIALS = {"username": "minsheng", "password": "sandbox-petition-pass"}
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XF = "urn:xinfang:petition:v1"
PLACES = [("公明街道", "上村社区"), ("玉塘街道", "田寮社区"), ("马田街道", "将石社区"),
          ("凤凰街道", "塘尾社区")]
CATEGORIES = [("纠纷调解", "劳动纠纷", "劳动报酬", "拖欠工资"),
              ("投诉建议", "住房建设", "物业管理", "物业服务质量"),
              ("帮扶救助", "社会救助", "最低生活保障", "低保申请"),
              ("投诉建议", "生态环境", "噪声污染", "施工噪声扰民")]
NAMES = ["王建国", "李秀兰", "张志强", "刘桂英", "陈海涛", "杨丽娟"]
FORMS = ["来信", "来访", "网上", "电话"]
STAGES = ["new", "accepted", "processing", "done", "closed", "rejected"]
BASE_TIME = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
FACTORY = Resident("O-00001", "深圳市光明区鸿运电子厂", "0755-27001234", "91440300MA5F1234X1")


def petition(i: int, **changes: Any) -> Ticket:
    """A hand-made petition number ``i`` (times a minute apart unless changed)."""
    street, community = PLACES[i % len(PLACES)]
    resident = Resident(f"P{i:04d}", NAMES[i % len(NAMES)], f"137{i:08d}", f"44031119800101{i:04d}")
    fields: dict[str, Any] = dict(
        channel="petition", source_id=f"XF440311-20261120-{i:04d}", incident_id=f"INC{i:04d}",
        resident=resident, title=f"关于{community}工业园拖欠工资的信访事项",
        content=f"信访人反映{street}{community}鸿运电子厂拖欠三个月工资，要求依法支付（第{i}件）。",
        category_path=CATEGORIES[i % len(CATEGORIES)], street=street, community=community,
        address=f"深圳市光明区{street}{community}工业园{i}栋", lat=None, lng=None,
        received_at=BASE_TIME + timedelta(minutes=i), updated_at=BASE_TIME + timedelta(minutes=i, seconds=20),
        stage=STAGES[i % len(STAGES)], extra={"form": FORMS[i % len(FORMS)], "head_count": 1})
    fields.update(changes)
    return Ticket(**fields)


def petitions(count: int, **changes: Any) -> list[Ticket]:
    return [petition(i, **changes) for i in range(1, count + 1)]


def connector_for(url: str, *, credentials: dict[str, str] | None = None, **options: Any
                  ) -> PetitionConnector:
    return PetitionConnector(ChannelConfig(
        key="petition", connector="petition", name="信访", base_url=url,
        credentials=CREDENTIALS if credentials is None else credentials, options=options, timeout=5))


@contextmanager
def xinfang(items: list[Ticket]) -> Iterator[str]:
    with serve(create_app(items)) as url:
        yield url


@asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[PetitionConnector]:
    async with connector_for(url, **options) as connector:
        yield connector


async def operations(url: str) -> dict[str, int]:
    return dict((await call("GET", f"{url}/__sandbox/operations")).json()["operations"])


def security_header(*, password: str = CREDENTIALS["password"], created: str | None = None,
                    nonce: bytes | None = None, kind: str = "PasswordDigest") -> str:
    """A UsernameToken written by hand (not by the connector), for raw requests."""
    nonce = nonce or os.urandom(16)
    created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sha1 = hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False)
    digest = base64.b64encode(sha1.digest()).decode()
    secret = digest if kind == "PasswordDigest" else password
    profile = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    return (f'<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-'
            f'secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-'
            f'utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>minsheng</wsse:Username>'
            f'<wsse:Password Type="{profile}#{kind}">{secret}</wsse:Password>'
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>")


async def raw_soap(url: str, body: str, *, header: str | None = None, action: str = "QueryPetitions",
                   envelope_ns: str = SOAP, prolog: str = "") -> httpx.Response:
    header = security_header() if header is None else header
    text = (f'{prolog}<s:Envelope xmlns:s="{envelope_ns}" xmlns:xf="{XF}"><s:Header>{header}</s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>")
    return await call("POST", f"{url}/ws/PetitionService", content=text.encode(),
                      headers={"Content-Type": "text/xml; charset=utf-8",
                               "SOAPAction": f'"{SOAP_ACTION_PREFIX}{action}"'})


def fault_of(answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/xml")
    fault = SafeET.fromstring(answer.content).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert fault is not None
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def action(kind: WriteBackKind, action_id: str, source_id: str = "XF440311-20261120-0001", **fields: Any
           ) -> WriteBackAction:
    return WriteBackAction(action_id=action_id, source_id=source_id, kind=kind,
                           actor=fields.get("actor", "信访局周科长"),
                           department=fields.get("department", "区人力资源局"),
                           message=fields.get("message", "已约谈企业负责人"), at=BASE_TIME)


# -- paging, normalisation, resume --------------------------------------------------------------------
async def test_pages_to_the_end_and_normalises_every_field() -> None:
    items = petitions(45)
    with xinfang(items) as url:
        async with connected(url, page_size=20) as connector:
            pages = await drain(connector)
    assert ids(pages) == [t.source_id for t in items]
    assert not any(p.rejected for p in pages)
    record, source = pages[0].records[3], items[3]
    assert (record.title, record.content) == (source.title, source.content)
    assert (record.received_at, record.updated_at) == (source.received_at, source.updated_at)
    assert (record.place.street, record.place.community, record.place.address) == (
        source.street, source.community, source.address)
    assert record.category_hint == source.category_path[-1]
    (party,) = record.parties
    assert (party.role, party.name, party.phone, party.id_number) == (
        "信访人", source.resident.name, source.resident.phone, source.resident.id_number)
    assert record.extra == {"信访形式": source.extra["form"], "人数": 1, "集体访": False,
                            "承办单位": "光明区人力资源局"}


async def test_status_words_map_to_the_unified_lifecycle() -> None:
    items = petitions(6)
    with xinfang(items) as url:
        async with connected(url) as connector:
            (page,) = await drain(connector)
    got = {t.stage: (r.status, r.source_status) for t, r in zip(items, page.records, strict=True)}
    assert got == {"new": (UnifiedStatus.SUBMITTED, "待受理"), "accepted": (UnifiedStatus.ACCEPTED, "已受理"),
                   "processing": (UnifiedStatus.IN_PROGRESS, "办理中"),
                   "done": (UnifiedStatus.RESOLVED, "已答复"), "closed": (UnifiedStatus.CLOSED, "已办结"),
                   "rejected": (UnifiedStatus.REJECTED, "不予受理")}


def test_yyyymmddhhmmss_is_beijing_time() -> None:
    assert parse_time("20270101003000") == datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    for bad in ("00000000000000", "20261320093000", "2026-11-20 09:30", "2026112009300", None):
        with pytest.raises(ValueError, match="yyyyMMddHHmmss"):
            parse_time(bad)


async def test_beijing_times_become_utc_across_the_date_line() -> None:
    instant = datetime(2025, 12, 31, 16, 30, 5, tzinfo=UTC)  # 2026-01-01 00:30:05 in Beijing
    with xinfang([petition(1, received_at=instant, updated_at=instant)]) as url:
        raw = await raw_soap(url, "<xf:QueryPetitions><xf:pageSize>5</xf:pageSize></xf:QueryPetitions>")
        async with connected(url) as connector:
            (page,) = await drain(connector)
    assert "<xf:登记时间>20260101003005</xf:登记时间>" in raw.text
    assert page.records[0].received_at == instant


async def test_resumes_from_a_saved_cursor_without_loss_or_duplicates() -> None:
    items = petitions(30)
    with xinfang(items) as url:
        async with connected(url, page_size=8) as connector:
            first = await anext(connector.changes(None))
        async with connected(url, page_size=8) as restarted:
            rest = await drain(restarted, first.cursor)
            assert ids([first, *rest]) == [t.source_id for t in items]
            assert ids(await drain(restarted, rest[-1].cursor)) == []
            await restarted.write_back(action(WriteBackKind.SIGN, "resume-1", source_id=items[5].source_id))
            changed = await drain(restarted, rest[-1].cursor)
    assert ids(changed) == [items[5].source_id]
    assert changed[0].records[0].status is UnifiedStatus.ACCEPTED


async def test_petitions_changing_while_paging_are_not_lost() -> None:
    items = petitions(12, stage="new")
    with xinfang(items) as url:
        async with connected(url, page_size=5) as connector:
            pages = []
            async for page in connector.changes(None):
                pages.append(page)
                if len(pages) == 1:  # a petition of the first page is accepted: it moves to the end
                    await connector.write_back(action(WriteBackKind.SIGN, "move-1", items[0].source_id))
            # a pass reads up to the second it started (the service's times are whole seconds): the move
            # comes in this pass when it landed in that second, else in the next one — once, either way
            later = await drain(connector, pages[-1].cursor)
    assert ids(pages) + ids(later) == [t.source_id for t in items] + [items[0].source_id]


async def test_more_petitions_in_one_second_than_fit_a_page_are_each_delivered_once() -> None:
    items = petitions(30, updated_at=BASE_TIME + timedelta(hours=3))
    with xinfang(items) as url:
        cursor, piecewise = None, []
        for _ in range(20):  # resume after every single page
            async with connected(url, page_size=7) as connector:
                page = await anext(connector.changes(cursor))
            piecewise += [r.source_id for r in page.records]
            cursor = page.cursor
            if not page.records and len(piecewise) == 30:
                break
    assert sorted(piecewise) == sorted(t.source_id for t in items)


async def test_group_petitions_carry_head_counts_representatives_and_the_respondent() -> None:
    group = petition(1, extra={"form": "来访", "head_count": 35}, other_party=FACTORY)
    with xinfang([group]) as url:
        async with connected(url) as connector:
            (page,) = await drain(connector)
            detail = (await connector.get_many([group.source_id]))[group.source_id]
    record = page.records[0]
    assert record.extra["人数"] == 35
    assert record.extra["集体访"] is True
    assert record.extra["信访形式"] == "来访"
    assert [(p.role, p.name, p.is_organisation) for p in record.parties] == [
        ("代表", group.resident.name, False), ("被反映人", FACTORY.name, True)]
    assert isinstance(detail, PetitionSource)
    assert (detail.is_group, detail.head_count, detail.respondent, detail.respondent_type) == (
        True, 35, FACTORY.name, "单位")
    assert detail.registered_at_text == "20261120093100"


# -- WS-Security ---------------------------------------------------------------------------------------
async def test_a_hand_written_username_token_is_accepted_and_bad_ones_fail_authentication() -> None:
    body = "<xf:QueryPetitions><xf:pageSize>5</xf:pageSize></xf:QueryPetitions>"
    stale = (datetime.now(UTC) - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with xinfang(petitions(2)) as url:
        accepted = await raw_soap(url, body, header=security_header(nonce=b"nonce-0000000001"))
        assert accepted.status_code == 200
        refused = [
            await raw_soap(url, body, header=security_header(nonce=b"nonce-0000000001")),  # replayed nonce
            await raw_soap(url, body, header=security_header(password="guess", nonce=b"nonce-2")),
            await raw_soap(url, body, header=security_header(created=stale, nonce=b"nonce-3")),
            await raw_soap(url, body, header=security_header(kind="PasswordText", nonce=b"nonce-4")),
            await raw_soap(url, body, header=""),
        ]
    reasons = []
    for answer in refused:
        code, reason = fault_of(answer)
        assert code == "wsse:FailedAuthentication"
        reasons.append(reason)
    assert ["Nonce已使用" in reasons[0], "摘要" in reasons[1], "5分钟" in reasons[2],
            "PasswordDigest" in reasons[3], "缺少" in reasons[4]] == [True] * 5


async def test_wrong_password_stale_clock_and_reused_nonce_are_authentication_failed() -> None:
    with xinfang(petitions(2)) as url:
        async with connected(url, credentials={**CREDENTIALS, "password": "guess"}) as connector:
            with pytest.raises(AuthenticationFailed, match="FailedAuthentication"):
                await drain(connector)
            with pytest.raises(AuthenticationFailed):
                await connector.get_many(["XF440311-20261120-0001"])
            with pytest.raises(AuthenticationFailed):
                await connector.write_back(action(WriteBackKind.SIGN, "auth-1"))
        async with connected(url) as connector:
            connector.auth.clock = lambda: time.time() - 600
            with pytest.raises(AuthenticationFailed):
                await drain(connector)
            connector.auth.clock = time.time
            assert len(ids(await drain(connector))) == 2
        async with connected(url) as connector:
            connector.auth = UsernameToken(CREDENTIALS["username"], CREDENTIALS["password"],
                                           nonces=[b"same-nonce-bytes"] * 2)
            connector.client.auth = connector.auth
            await connector.get_many(["XF440311-20261120-0001"])
            with pytest.raises(AuthenticationFailed, match="Nonce"):
                await connector.get_many(["XF440311-20261120-0001"])


# -- SOAP faults and hostile XML -----------------------------------------------------------------------
async def test_bad_requests_are_soap_client_faults() -> None:
    with xinfang(petitions(2)) as url:
        too_big = await raw_soap(url, "<xf:QueryPetitions><xf:pageSize>51</xf:pageSize></xf:QueryPetitions>")
        bad_time = await raw_soap(url, "<xf:QueryPetitions><xf:modifiedFrom>2026-11-20</xf:modifiedFrom>"
                                       "</xf:QueryPetitions>")
        mismatch = await raw_soap(url, "<xf:QueryPetitions/>", action="GetPetitions")
        soap12 = await raw_soap(url, "<xf:QueryPetitions/>", envelope_ns="http://www.w3.org/2003/05/soap-envelope")
        with_dtd = await raw_soap(url, "<xf:QueryPetitions/>", prolog='<!DOCTYPE x [<!ENTITY e "boom">]>')
    assert [fault_of(a)[0] for a in (too_big, bad_time, mismatch, with_dtd)] == ["soap:Client"] * 4
    assert fault_of(soap12)[0] == "soap:VersionMismatch"
    assert "1-50" in fault_of(too_big)[1]


def hostile_app(status: int, body: str, content_type: str = "text/xml; charset=utf-8") -> Starlette:
    async def answer(request: Request) -> Response:
        return Response(body.encode(), status_code=status, media_type=content_type)

    return Starlette(routes=[Route("/ws/PetitionService", answer, methods=["POST"])])


def envelope(inner: str, prolog: str = "") -> str:
    return (f'<?xml version="1.0"?>{prolog}<soap:Envelope xmlns:soap="{SOAP}" xmlns:xf="{XF}"><soap:Body>'
            f"{inner}</soap:Body></soap:Envelope>")


LAUGHS = "<!DOCTYPE soap:Envelope [<!ENTITY l0 \"lol\">" + "".join(
    f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)) + "]>"
FAULT = "<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring></soap:Fault>"
ONE_ITEM = ("<xf:QueryPetitionsResponse><xf:totalCount>1</xf:totalCount><xf:items><xf:item>"
            "<xf:信访件编号>XF440311-20261120-0001</xf:信访件编号><xf:标题>{title}</xf:标题>"
            "</xf:item></xf:items></xf:QueryPetitionsResponse>")


async def test_faults_map_to_typed_errors() -> None:
    cases = [("soap:Server", UpstreamUnavailable), ("soap:Server.Database", UpstreamUnavailable),
             ("soap:Client", UpstreamRejected), ("wsse:FailedAuthentication", AuthenticationFailed),
             ("wsse:InvalidSecurityToken", AuthenticationFailed)]
    for code, error in cases:
        fault = envelope(FAULT.format(code=code, text="数据库连接超时"))
        with serve(hostile_app(500, fault)) as url:
            async with connected(url) as connector:
                with pytest.raises(error, match=code.split(".")[0]) as caught:
                    await drain(connector)
        assert type(caught.value) is error
    with serve(hostile_app(200, envelope(FAULT.format(code="soap:Client", text="fault on 200")))) as url:
        async with connected(url) as connector:
            with pytest.raises(UpstreamRejected, match="fault on 200"):
                await drain(connector)


async def test_billion_laughs_and_external_entities_are_refused_never_expanded() -> None:
    fetched: list[str] = []

    async def canary(request: Request) -> Response:
        fetched.append(request.url.path)
        return PlainTextResponse("身份证号 440311198001010001")

    with serve(Starlette(routes=[Route("/{path:path}", canary)])) as canary_url:
        answers = [
            (200, envelope(ONE_ITEM.format(title="&l9;"), LAUGHS)),
            (200, envelope(ONE_ITEM.format(title="&x;"),
                           f'<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "{canary_url}/xxe">]>')),
            (200, envelope(ONE_ITEM.format(title="&x;"),
                           '<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>')),
            (200, envelope(ONE_ITEM.format(title="t"),
                           f'<!DOCTYPE soap:Envelope [<!ENTITY % p SYSTEM "{canary_url}/dtd"> %p;]>')),
            (500, envelope(FAULT.format(code="soap:Server", text="&l9;"), LAUGHS)),
        ]
        for status, body in answers:
            with serve(hostile_app(status, body)) as url:
                async with connected(url) as connector:
                    with pytest.raises(UpstreamRejected, match="DTD") as caught:
                        await drain(connector)
                    with pytest.raises(UpstreamRejected, match="DTD"):
                        await connector.get_many(["XF440311-20261120-0001"])
            assert type(caught.value) is UpstreamRejected
            assert "lollol" not in str(caught.value)
    assert fetched == []


async def test_text_from_users_is_escaped_into_the_envelope() -> None:
    hostile = "</xf:content><xf:action>办结</xf:action>&amp; <![CDATA[x]]> <!-- -->"
    with xinfang(petitions(2)) as url:  # petition 2 is 办理中
        async with connected(url) as connector:
            result = await connector.write_back(action(WriteBackKind.REPLY, "esc-1", "XF440311-20261120-0002",
                                                       message=hostile, actor="<script>张三</script>"))
            detail = (await connector.get_many(["XF440311-20261120-0002"]))["XF440311-20261120-0002"]
    assert result.source_status == "办理中"  # 答复 as sent, not the 办结 smuggled into its text
    assert isinstance(detail, PetitionSource)
    (step,) = detail.steps
    assert (step.action, step.content, step.operator) == ("答复", hostile, "<script>张三</script>")


# -- batch, faults of the channel ------------------------------------------------------------------------
async def test_batch_get_honours_the_limit_of_thirty() -> None:
    items = petitions(63)
    asked = [t.source_id for t in items] + ["XF440311-20991231-0001", "XF440311-20991231-0002"]
    with xinfang(items) as url:
        async with connected(url) as connector:
            assert connector.describe().capabilities.batch_limit == 30
            found = await connector.get_many(asked)
        assert (await operations(url)) == {"GetPetitions": 3}  # 65 ids → 30 + 30 + 5
        too_many = await raw_soap(url, "<xf:GetPetitions><xf:ids>" + "".join(
            f"<xf:id>{i}</xf:id>" for i in asked[:31]) + "</xf:ids></xf:GetPetitions>", action="GetPetitions")
    assert "30" in fault_of(too_many)[1]
    assert set(found) == set(asked)
    assert found["XF440311-20991231-0001"] is None
    record = found[items[1].source_id]
    assert isinstance(record, PetitionSource)
    assert (record.title, record.status, record.updated_at) == (items[1].title, "办理中", items[1].updated_at)


async def test_channel_down_errors_and_429() -> None:
    with xinfang(petitions(2)) as url:
        async with connected(url) as connector:
            await knob(url, "faults", down=True)
            with pytest.raises(UpstreamUnavailable):
                await drain(connector)
            await knob(url, "faults", reset=True, error_rate=1.0)  # a plain-text 500, not a SOAP fault
            with pytest.raises(UpstreamUnavailable) as caught:
                await connector.get_many(["XF440311-20261120-0001"])
            assert type(caught.value) is UpstreamUnavailable
            await knob(url, "faults", reset=True, rate_429=1.0)
            with pytest.raises(RateLimited):
                await connector.get_many(["XF440311-20261120-0001"])
            await knob(url, "faults", reset=True)
            assert len(ids(await drain(connector))) == 2


async def test_a_malformed_item_is_rejected_while_the_others_come_through() -> None:
    migrated = datetime(2019, 3, 1, 9, 0)  # naive: the old system had no time; it shows the zero date
    items = [*petitions(3), petition(4, source_id=""), petition(5, received_at=migrated), petition(6)]
    with xinfang(items) as url:
        async with connected(url) as connector:
            pages = await drain(connector)
    rejected = [bad for page in pages for bad in page.rejected]
    assert all(isinstance(bad, BadRecord) for bad in rejected)
    assert sorted((bad.source_id or "", bad.reason) for bad in rejected) == [
        ("", "信访件编号 is missing"),
        ("XF440311-20261120-0005", "登记时间: not a valid yyyyMMddHHmmss time: '00000000000000'")]
    assert all("<xf:item" in bad.raw for bad in rejected)  # the item as sent, for the quarantine
    assert sorted(ids(pages)) == [t.source_id for t in items if t.source_id and "0005" not in t.source_id]


# -- write-back -----------------------------------------------------------------------------------------
async def test_write_back_is_applied_once_per_serial_number() -> None:
    with xinfang(petitions(6)) as url:  # petition 6 is 待受理
        async with connected(url) as connector:
            sign = action(WriteBackKind.SIGN, "op-1", "XF440311-20261120-0006")
            first, again = await connector.write_back(sign), await connector.write_back(sign)
            reply = await connector.write_back(action(WriteBackKind.REPLY, "op-2", "XF440311-20261120-0006"))
            done = await connector.write_back(action(WriteBackKind.RESOLVE, "op-3", "XF440311-20261120-0006",
                                                     message="已督促企业支付全部欠薪"))
            with pytest.raises(UpstreamRejected, match="soap:Client"):  # 已办结 cannot be returned
                await connector.write_back(action(WriteBackKind.RETURN, "op-4", "XF440311-20261120-0006"))
            with pytest.raises(UpstreamRejected, match="信访件不存在"):
                await connector.write_back(action(WriteBackKind.SIGN, "op-5", "XF440311-20991231-0001"))
            detail = (await connector.get_many(["XF440311-20261120-0006"]))["XF440311-20261120-0006"]
    assert (first.duplicate, again.duplicate, reply.duplicate) == (False, True, False)
    assert (first.source_status, reply.source_status, done.source_status) == ("已受理", "办理中", "已办结")
    assert isinstance(detail, PetitionSource)
    assert [(s.serial_no, s.action) for s in detail.steps] == [
        ("op-1", "受理"), ("op-2", "答复"), ("op-3", "办结")]
    assert (detail.steps[0].operator, detail.steps[0].department) == ("信访局周科长", "区人力资源局")
    assert detail.steps[2].content == "已督促企业支付全部欠薪"
    assert detail.status == "已办结"


async def test_a_returned_petition_reads_as_returned() -> None:
    with xinfang(petitions(2)) as url:  # petition 2 is 办理中
        async with connected(url) as connector:
            await connector.write_back(action(WriteBackKind.RETURN, "ret-1", "XF440311-20261120-0002",
                                              message="不属于本单位职责"))
            (page,) = await drain(connector)
    returned = next(r for r in page.records if r.source_id == "XF440311-20261120-0002")
    assert (returned.status, returned.source_status) == (UnifiedStatus.RETURNED, "已退回")


# -- configuration and the contract ----------------------------------------------------------------------
def test_configuration_problems_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        connector_for("http://127.0.0.1:9", credentials={}, page_size=80, since="yesterday")
    assert len(caught.value.problems) == 4
    assert connector_for("http://127.0.0.1:9", since="2026-11-01").since == "20261101000000"
    assert connector_for("http://127.0.0.1:9", since="2026-11-01T00:00:00Z").since == "20261101080000"


async def test_the_wsdl_documents_the_operations_the_connector_calls() -> None:
    wsdl_file = Path(sandbox_package.__file__).parent / "PetitionService.wsdl"
    wsdl = SafeET.fromstring(wsdl_file.read_bytes())
    ns = {"w": "http://schemas.xmlsoap.org/wsdl/", "s": "http://schemas.xmlsoap.org/wsdl/soap/"}
    actions = {op.get("name"): op.find("s:operation", ns).get("soapAction")  # type: ignore[union-attr]
               for op in wsdl.findall("w:binding/w:operation", ns)}
    assert actions == {name: f"{SOAP_ACTION_PREFIX}{name}" for name in
                       ("QueryPetitions", "GetPetitions", "SubmitFeedback")}
    with xinfang([]) as url:
        served = await call("GET", f"{url}/ws/PetitionService?wsdl")
    address = SafeET.fromstring(served.content).find("w:service/w:port/s:address", ns)
    assert address is not None
    assert address.get("location") == f"{url}/ws/PetitionService"


async def test_the_generated_world_syncs_cleanly() -> None:
    from sandbox.world import generate_world

    items = generate_world(7).tickets_for("petition")
    with xinfang(items) as url:
        await knob(url, "arrive")
        async with connected(url, page_size=25) as connector:
            pages = await drain(connector)
    assert [bad.reason for page in pages for bad in page.rejected] == []
    assert sorted(ids(pages)) == sorted(t.source_id for t in items)
    assert any(r.extra["集体访"] for page in pages for r in page.records)

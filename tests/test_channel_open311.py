"""Open311 GeoReport v2: sandbox and connector over real HTTP (uvicorn).

Time windows over requested_datetime cut in halves at the 1,000 cap, the trailing re-poll for status
changes, the ``since`` backfill, JSON and XML (hostile XML refused), errors as the spec gives them,
batch get by service_request_id (≤50), and write-back through servicerequestupdates where offered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
from connectors.open311 import GeoReportError, Open311Connector, Open311Source
from sandbox.open311 import create_app
from sandbox.world import Resident, Ticket
from tests.channels import call, drain, ids, knob, stats
from tests.servers import serve

API_KEY = "sandbox-open311-key"
JURISDICTION = "guangming.sz.gov.cn"
CITY = [("投诉建议", "城市管理", "市容环境", "占道经营"),
        ("投诉建议", "生态环境", "噪声污染", "施工噪声扰民"),
        ("投诉建议", "交通运输", "停车管理", "乱停车"),
        ("投诉建议", "城市管理", "市容环境", "垃圾清运不及时")]
PLACES = [("光明街道", "光明社区", 22.774, 113.935), ("玉塘街道", "田寮社区", 22.715, 113.925),
          ("凤凰街道", "塘尾社区", 22.748, 113.935), ("马田街道", "将石社区", 22.76, 113.88)]
STAGES = ["new", "accepted", "processing", "done", "closed", "rejected"]
NOW = datetime.now(UTC).replace(microsecond=0)
BASE_TIME = NOW - timedelta(days=3)


def request(i: int, *, board: bool = False, **changes: Any) -> Ticket:
    """A hand-made request number ``i`` (a minute apart from three days ago unless changed)."""
    street, community, lat, lng = PLACES[i % len(PLACES)]
    received = changes.pop("received_at", BASE_TIME + timedelta(minutes=i))
    fields: dict[str, Any] = dict(
        channel="open311", source_id=f"311-{i:06d}", incident_id=f"INC{i:04d}",
        resident=Resident(f"R{i:04d}", "市民", f"139{i:08d}", f"44030619900101{i:04d}"),
        title="占道经营", content=f"{community}光明大道{i}号门口流动摊贩占道经营！晚上十点后还在，影响通行。",
        category_path=CITY[i % len(CITY)], street=None if board else street,
        community=None if board else community,
        address=None if board else f"深圳市光明区{street}光明大道{i}号",
        lat=None if board else lat, lng=None if board else lng, received_at=received,
        updated_at=received + timedelta(seconds=30), stage=STAGES[i % len(STAGES)], extra={"board": board})
    fields.update(changes)
    return Ticket(**fields)


def requests(count: int, **changes: Any) -> list[Ticket]:
    return [request(i, **changes) for i in range(1, count + 1)]


def connector_for(url: str, *, api_key: str | None = API_KEY, **options: Any) -> Open311Connector:
    options.setdefault("jurisdiction_id", JURISDICTION)
    return Open311Connector(ChannelConfig(
        key="open311", connector="open311", name="城市服务（Open311）", base_url=url,
        credentials={} if api_key is None else {"api_key": api_key}, options=options, timeout=10))


@contextmanager
def georeport(items: list[Ticket], **app_options: Any) -> Iterator[str]:
    with serve(create_app(items, **app_options)) as url:
        yield url


@asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[Open311Connector]:
    async with connector_for(url, **options) as connector:
        yield connector


def action(kind: WriteBackKind, action_id: str, source_id: str = "311-000001", **fields: Any
           ) -> WriteBackAction:
    return WriteBackAction(action_id=action_id, source_id=source_id, kind=kind,
                           actor=fields.get("actor", "center"), department=fields.get("department"),
                           message=fields.get("message", "已派执法队员到场"), at=NOW)


# -- windows, normalisation, formats ------------------------------------------------------------------
async def test_syncs_every_request_and_normalises_every_field() -> None:
    items = [*requests(20), request(21, board=True), request(22, board=True)]
    with georeport(items) as url:
        raw = (await call("GET", f"{url}/requests.json")).json()
        async with connected(url) as connector:
            pages = await drain(connector)
    assert sorted(ids(pages)) == sorted(t.source_id for t in items)
    assert len(ids(pages)) == len(items)
    records = {r.source_id: r for page in pages for r in page.records}
    record, source = records["311-000004"], items[3]
    assert record.title == f"{source.community}光明大道4号门口流动摊贩占道经营"  # the first sentence
    assert record.content == source.content
    assert record.category_hint == "占道经营"  # the service_name, the sandbox's leaf label
    assert (record.place.street, record.place.address, record.place.lat, record.place.lng) == (
        None, source.address, source.lat, source.lng)  # GeoReport has no street or community
    assert record.received_at == source.received_at
    assert record.received_at.utcoffset() == timedelta(0)
    assert record.parties == ()
    assert record.extra == {"service_code": "101", "agency_responsible": "光明区城市管理和综合执法局",
                            "located": True, "has_media": record.extra["has_media"]}
    board = records["311-000021"]
    assert (board.place.address, board.place.lat, board.extra["located"]) == (None, None, False)
    by_id = {row["service_request_id"]: row for row in raw}
    assert by_id["311-000004"]["requested_datetime"].endswith("+08:00")
    assert (by_id["311-000021"]["address"], by_id["311-000021"]["lat"], by_id["311-000021"]["zipcode"]) == (
        None, None, None)


async def test_status_maps_to_the_unified_lifecycle() -> None:
    items = [request(i, updated_at=BASE_TIME + timedelta(minutes=i)) for i in range(1, 7)]
    with georeport(items) as url:
        async with connected(url) as connector:
            records = {r.source_id: r for r in (await drain(connector))[-1].records}
    got = {t.stage: (records[t.source_id].status, records[t.source_id].source_status) for t in items}
    assert got == {"new": (UnifiedStatus.SUBMITTED, "open"),
                   "accepted": (UnifiedStatus.IN_PROGRESS, "open"),
                   "processing": (UnifiedStatus.IN_PROGRESS, "open"),
                   "done": (UnifiedStatus.CLOSED, "closed"), "closed": (UnifiedStatus.CLOSED, "closed"),
                   "rejected": (UnifiedStatus.CLOSED, "closed")}


async def test_xml_and_json_give_the_same_records() -> None:
    items = [*requests(8), request(9, board=True)]
    with georeport(items) as url:
        xml = await call("GET", f"{url}/requests.xml")
        async with connected(url, format="xml") as connector:
            from_xml = await drain(connector)
            detail_xml = await connector.get_many(["311-000003"])
        async with connected(url) as connector:
            from_json = await drain(connector)
            detail_json = await connector.get_many(["311-000003"])
    assert xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert xml.text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<service_requests><request>")
    assert [p.records for p in from_xml] == [p.records for p in from_json]
    assert detail_xml == detail_json
    assert isinstance(detail_xml["311-000003"], Open311Source)


async def test_windows_are_cut_in_halves_until_under_the_cap() -> None:
    start = NOW - timedelta(hours=5)
    items = [request(i, received_at=start + timedelta(seconds=2 * i)) for i in range(1, 2501)]
    with georeport(items) as url:
        capped = (await call("GET", f"{url}/requests.json")).json()
        async with connected(url, since=(NOW - timedelta(days=1)).isoformat()) as connector:
            pages = await drain(connector)
        asked = (await stats(url))["GET /requests.{format}"] - 1
    assert len(capped) == 1000  # the endpoint's cap, most recent first
    assert capped[0]["service_request_id"] == "311-002500"
    delivered = ids(pages)
    assert len(delivered) == len(set(delivered)) == 2500
    assert all(len(page.records) < 1000 for page in pages)
    assert not any(page.rejected for page in pages)
    assert asked > len(pages)  # answers at the cap were thrown away and their windows cut


async def test_more_requests_in_one_second_than_the_cap_are_reported_not_hidden() -> None:
    same = BASE_TIME + timedelta(hours=1)
    items = [*requests(3), *(request(i, received_at=same) for i in range(10, 18))]
    with georeport(items, max_results=5) as url:
        async with connected(url, max_results=5) as connector:
            pages = await drain(connector)
    (overflow,) = [bad for page in pages for bad in page.rejected]
    assert "more than 5 requests" in overflow.reason
    assert {"311-000001", "311-000002", "311-000003"} <= set(ids(pages))


async def test_resumes_from_the_last_completed_window() -> None:
    items = requests(40)
    with georeport(items) as url:
        cursor, piecewise = None, list[str]()
        for _ in range(30):  # a fresh connector for every window
            async with connected(url, since=(BASE_TIME - timedelta(days=2)).isoformat(), window_days=1,
                                 reopen_days=0) as connector:
                page = await anext(connector.changes(cursor), None)
            if page is None or (not page.records and len(piecewise) == len(items)):
                break
            piecewise += [r.source_id for r in page.records]
            cursor = page.cursor
    assert sorted(piecewise) == sorted(t.source_id for t in items)
    assert len(piecewise) == len(items)


async def test_a_trailing_window_is_re_polled_for_status_changes() -> None:
    old = request(50, received_at=NOW - timedelta(days=20), stage="processing")
    items = [*requests(5), request(6, received_at=NOW - timedelta(days=2), stage="processing"), old]
    with georeport(items) as url:
        async with connected(url) as connector:
            first = await drain(connector)
            assert sorted(ids(first)) == sorted(t.source_id for t in items)  # a backfill sees each once
            await connector.write_back(action(WriteBackKind.RESOLVE, "close-6", "311-000006"))
            await connector.write_back(action(WriteBackKind.RESOLVE, "close-50", "311-000050"))
            again = await drain(connector, first[-1].cursor)
        async with connected(url, reopen_days=30) as connector:
            longer = await drain(connector, first[-1].cursor)
    seen = {r.source_id: r for page in again for r in page.records}
    assert seen["311-000006"].status is UnifiedStatus.CLOSED
    assert "311-000050" not in seen  # older than reopen_days: GeoReport cannot tell us
    assert {r.source_id: r.source_status for page in longer for r in page.records}["311-000050"] == "closed"


async def test_the_since_option_sets_where_a_backfill_starts() -> None:
    items = [*requests(3), request(7, received_at=NOW - timedelta(days=100)),
             request(8, received_at=NOW - timedelta(days=200))]
    with georeport(items) as url:
        async with connected(url) as connector:
            default = await drain(connector)
        async with connected(url, since=(NOW - timedelta(days=150)).date().isoformat()) as connector:
            older = await drain(connector)
        async with connected(url, since=(BASE_TIME + timedelta(minutes=2)).isoformat()) as connector:
            recent = await drain(connector)
        answers = await stats(url)
    assert sorted(ids(default)) == ["311-000001", "311-000002", "311-000003"]  # the last 90 days
    assert sorted(ids(older)) == ["311-000001", "311-000002", "311-000003", "311-000007"]
    assert sorted(ids(recent)) == ["311-000002", "311-000003"]
    assert set(answers) == {"GET /requests.{format}"}  # 150 days in windows of at most 90: never a 400


# -- errors, services, creation --------------------------------------------------------------------------
async def test_errors_are_geo_report_error_lists() -> None:
    with georeport(requests(2)) as url:
        bad_date = await call("GET", f"{url}/requests.json", params={"start_date": "yesterday"})
        too_long = await call("GET", f"{url}/requests.xml", params={
            "start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"})
        missing = await call("GET", f"{url}/requests/311-999999.json")
        elsewhere = await call("GET", f"{url}/services.json", params={"jurisdiction_id": "shenzhen.gov.cn"})
        no_key = await call("POST", f"{url}/requests.json", data={"service_code": "201"})
        no_code = await call("POST", f"{url}/requests.json", data={"api_key": API_KEY})
        async with connected(url, jurisdiction_id="shenzhen.gov.cn") as connector:
            with pytest.raises(GeoReportError, match=r"shenzhen\.gov\.cn not found") as caught:
                await drain(connector)
        async with connected(url, api_key="guess") as connector:
            with pytest.raises(AuthenticationFailed, match="api_key"):
                await connector.write_back(action(WriteBackKind.REPLY, "key-1"))
    assert caught.value.status == 404
    assert bad_date.status_code == 400
    assert bad_date.json() == [{"code": 400, "description": bad_date.json()[0]["description"]}]
    assert (too_long.status_code, too_long.headers["content-type"]) == (400, "text/xml; charset=utf-8")
    error = SafeET.fromstring(too_long.content)
    assert (error.tag, error.findtext("error/code")) == ("errors", "400")
    assert "90 days" in (error.findtext("error/description") or "")
    assert [(a.status_code, a.json()[0]["code"]) for a in (missing, elsewhere, no_key, no_code)] == [
        (404, 404), (404, 404), (403, 403), (400, 400)]


async def test_services_definitions_and_a_new_request() -> None:
    with georeport(requests(2)) as url:
        services = (await call("GET", f"{url}/services.json")).json()
        definition = (await call("GET", f"{url}/services/201.json")).json()
        plain = await call("GET", f"{url}/services/102.json")
        xml = SafeET.fromstring((await call("GET", f"{url}/services/201.xml")).content)
        lacking = await call("POST", f"{url}/requests.json", data={
            "api_key": API_KEY, "service_code": "201", "lat": "22.77", "long": "113.93"})
        created = await call("POST", f"{url}/requests.json", data={
            "api_key": API_KEY, "service_code": "201", "attribute[period]": "night", "lat": "22.77",
            "long": "113.93", "description": "工地凌晨两点还在打桩", "jurisdiction_id": JURISDICTION})
        async with connected(url) as connector:
            found = await connector.get_many([created.json()[0]["service_request_id"]])
    assert {s["service_code"]: s["metadata"] for s in services}["201"] is True
    assert services[0].keys() >= {"service_code", "service_name", "description", "metadata", "type",
                                  "keywords", "group"}
    assert [v["key"] for v in definition["attributes"][0]["values"]] == ["night", "noon", "day"]
    assert plain.status_code == 404
    assert (xml.tag, xml.findtext("attributes/attribute/values/value/key")) == ("service_definition", "night")
    assert "period" in lacking.json()[0]["description"]
    (row,) = created.json()
    assert row["service_request_id"] == "311-000003"
    record = found["311-000003"]
    assert isinstance(record, Open311Source)
    assert (record.service_code, record.description, record.status) == ("201", "工地凌晨两点还在打桩", "open")


async def test_a_malformed_request_is_rejected_while_the_others_come_through() -> None:
    good = {"service_request_id": "311-000001", "status": "open", "service_name": "乱停车",
            "description": "路口有车乱停。", "requested_datetime": (NOW - timedelta(hours=1)).isoformat(),
            "updated_datetime": None, "lat": "not a number", "long": 113.9}
    rows = [good, {**good, "service_request_id": "311-000002", "requested_datetime": "2026-11-20 09:00"},
            {**good, "service_request_id": None}, "nonsense", {**good, "service_request_id": "311-000003",
                                                                "status": "pending"}]

    async def answer(request: Request) -> Response:
        return JSONResponse(rows)

    with serve(Starlette(routes=[Route("/requests.json", answer)])) as url:
        async with connected(url, since=(NOW - timedelta(hours=12)).isoformat()) as connector:
            pages = await drain(connector)  # one window, one answer
    rejected = sorted((bad.source_id or "", bad.reason) for p in pages for bad in p.rejected)
    assert all(isinstance(bad, BadRecord) for p in pages for bad in p.rejected)
    assert rejected == [("", "request is not an object"), ("", "service_request_id is missing"),
                        ("311-000002", "no time zone in '2026-11-20 09:00'"),
                        ("311-000003", "status must be open or closed, not 'pending'")]
    (record,) = [r for p in pages for r in p.records]
    assert (record.source_id, record.place.lat, record.place.lng) == ("311-000001", None, None)


async def test_hostile_xml_is_refused_never_expanded() -> None:
    laughs = "<!DOCTYPE r [<!ENTITY a \"lol\">" + "".join(
        f'<!ENTITY a{i} "{"&a;" * 10 if i == 1 else f"&a{i - 1};" * 10}">' for i in range(1, 9)) + "]>"
    body = f"<?xml version=\"1.0\"?>{laughs}<service_requests><request><description>&a8;</description>" \
           "</request></service_requests>"

    async def answer(request: Request) -> Response:
        return Response(body.encode(), media_type="text/xml; charset=utf-8",
                        status_code=400 if "service_request_id" in request.query_params else 200)

    with serve(Starlette(routes=[Route("/requests.xml", answer)])) as url:
        async with connected(url, format="xml") as connector:
            with pytest.raises(UpstreamRejected, match="DTD") as caught:
                await drain(connector)
            with pytest.raises(UpstreamRejected, match="DTD"):  # an error answer is parsed as carefully
                await connector.get_many(["311-000001"])
    assert "lollol" not in str(caught.value)


# -- batch get, faults -----------------------------------------------------------------------------------
async def test_batch_get_honours_the_limit_of_fifty() -> None:
    items = requests(118)
    asked = [t.source_id for t in items] + ["311-999998", "311-999999"]
    with georeport(items) as url:
        async with connected(url) as connector:
            assert connector.describe().capabilities.batch_limit == 50
            found = await connector.get_many([*asked, "311,odd"])
        answers = await stats(url)
    assert answers == {"GET /requests.{format}": 3, "GET /requests/{service_request_id}.{format}": 1}
    assert set(found) == {*asked, "311,odd"}
    assert [found[i] for i in ("311-999998", "311,odd")] == [None, None]
    record = found["311-000002"]
    assert isinstance(record, Open311Source)
    assert (record.status, record.service_name, record.requested_datetime) == (
        "open", "乱停车", items[1].received_at)


async def test_channel_down_is_upstream_unavailable_and_429_is_rate_limited() -> None:
    with georeport(requests(2)) as url:
        async with connected(url) as connector:
            await knob(url, "faults", down=True)
            with pytest.raises(UpstreamUnavailable):
                await drain(connector)
            await knob(url, "faults", reset=True, rate_429=1.0)
            with pytest.raises(RateLimited):
                await connector.get_many(["311-000001"])
            await knob(url, "faults", reset=True)
            assert len(ids(await drain(connector))) == 2


# -- write-back ------------------------------------------------------------------------------------------
async def test_updates_are_applied_once_per_update_id() -> None:
    with georeport(requests(2)) as url:  # request 1 is open
        async with connected(url) as connector:
            reply = action(WriteBackKind.REPLY, "upd-1", message="执法队员已到场劝离")
            first, again = await connector.write_back(reply), await connector.write_back(reply)
            done = await connector.write_back(action(WriteBackKind.RESOLVE, "upd-2", department="区城管局",
                                                     message="摊贩已清离"))
            with pytest.raises(GeoReportError, match="311-999999 not found"):
                await connector.write_back(action(WriteBackKind.SIGN, "upd-3", "311-999999"))
            assert connector.describe().capabilities.write_back is True
            detail = (await connector.get_many(["311-000001"]))["311-000001"]
        log = (await call("GET", f"{url}/servicerequestupdates.json")).json()
    assert (first.duplicate, again.duplicate, done.duplicate) == (False, True, False)
    assert (first.source_status, done.source_status) == ("open", "closed")
    assert isinstance(detail, Open311Source)
    assert (detail.status, detail.status_notes) == ("closed", "【区城管局】摊贩已清离")
    assert [(u["update_id"], u["status"], u["account_id"]) for u in log] == [
        ("upd-1", "open", "center"), ("upd-2", "closed", "center")]


async def test_an_endpoint_without_the_update_extension_rejects_write_back() -> None:
    with georeport(requests(2), updates=False) as url:
        async with connected(url) as connector:
            assert connector.describe().capabilities.write_back is True  # auto: not known yet
            with pytest.raises(UpstreamRejected, match="does not accept updates") as caught:
                await connector.write_back(action(WriteBackKind.RESOLVE, "none-1"))
            assert type(caught.value) is UpstreamRejected
            assert connector.describe().capabilities.write_back is False
            with pytest.raises(UpstreamRejected, match="does not accept updates"):
                await connector.write_back(action(WriteBackKind.RESOLVE, "none-2"))
        assert (await stats(url)) == {"POST /servicerequestupdates.json": 1}  # asked once, then known
    assert connector_for(url, updates="false").describe().capabilities.write_back is False
    assert connector_for(url, api_key=None).describe().capabilities.write_back is False


# -- configuration and the contract ----------------------------------------------------------------------
def test_configuration_problems_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        connector_for("http://127.0.0.1:9", format="csv", since="last week", reopen_days=-1, window_days=120,
                      updates="sometimes")
    assert len(caught.value.problems) == 5
    since = connector_for("http://127.0.0.1:9", since="2026-09-01").since
    assert since is not None
    assert since.astimezone(UTC) == datetime(2026, 8, 31, 16, 0, tzinfo=UTC)  # Beijing midnight


async def test_the_generated_world_syncs_cleanly() -> None:
    from sandbox.world import generate_world

    items = generate_world(7).tickets_for("open311")
    with georeport(items) as url:
        await knob(url, "arrive")
        async with connected(url) as connector:
            first = await drain(connector)
            # arrivals get their requested_datetime when first shown, in the first pass's last second
            await asyncio.sleep(1.1)
            later = await drain(connector, first[-1].cursor)
    assert [bad.reason for page in [*first, *later] for bad in page.rejected] == []
    assert set(ids(first)) | set(ids(later)) == {t.source_id for t in items}
    assert any(r.place.lat is None and r.place.address is None for page in first for r in page.records)

"""The sandbox world generator and the all-channels sandbox app."""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import opencc
import pytest

import sandbox
from gateway import cli
from sandbox.app import create_sandbox, main
from sandbox.people import credit_code_ok, id_number_ok
from sandbox.places import STREETS
from sandbox.problems import KINDS
from sandbox.world import CHANNELS, Incident, Resident, Ticket, World, generate_world, week_start
from sandbox.worldgen import LEADER_SHARE
from tests.servers import serve

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
SHARES = {"hotline12345": 0.40, "mayor": 0.15, "open311": 0.12, "petition": 0.12, "court": 0.10,
          "legalaid": 0.11}
ID_FORMATS = {
    "hotline12345": r"GD\d{8}\d{4}",
    "mayor": r"QZXX-2026-\d{6}",
    "court": r"\(2026\)粤0311民诉前调\d+号",
    "legalaid": r"FY-440311-2026-\d{4}",
    "petition": r"XF440311-\d{8}-\d{4}",
    "open311": r"311-\d{6}",
    "shuji": r"SJZX2026\d{6}",
    "juzhang": r"JZXX-\d{8}-\d{3}",
}
STAGES = {"new", "accepted", "processing", "done", "closed", "rejected"}
OPTIONAL_STR = (str, type(None))
OPTIONAL_FLOAT = (float, type(None))
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "channel": str, "source_id": str, "incident_id": str, "resident": Resident, "title": str, "content": str,
    "category_path": tuple, "street": OPTIONAL_STR, "community": OPTIONAL_STR, "address": OPTIONAL_STR,
    "lat": OPTIONAL_FLOAT, "lng": OPTIONAL_FLOAT, "received_at": datetime, "updated_at": datetime,
    "stage": str, "arrives_after": float, "extra": dict, "other_party": (Resident, type(None)),
    "eval_split": str,
}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(7, NOW)


def _channels_by_incident(world: World) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for ticket in world.tickets:
        out[ticket.incident_id].add(ticket.channel)
    return out


def test_same_seed_and_now_give_the_same_world(world: World) -> None:
    again = generate_world(7, NOW)
    assert again == world
    assert generate_world(8, NOW).tickets != world.tickets


def test_shares_of_channels_and_of_cross_channel_incidents(world: World) -> None:
    # 400 for the six first channels, and LEADER_SHARE more raised only through 书记在线 or 局长信箱
    assert len(world.incidents) == 400 + round(400 * LEADER_SHARE)
    leaders = [t for t in world.tickets if t.channel in ("shuji", "juzhang")]
    assert 0.04 < len(leaders) / len(world.tickets) < 0.12
    assert all(t.extra["qr_level"] in ("区", "街道", "社区") for t in leaders if t.channel == "shuji")
    for seeded in (world, generate_world(11, NOW)):
        counts = Counter(t.channel for t in seeded.tickets)
        for channel, share in SHARES.items():
            assert abs(counts[channel] / len(seeded.tickets) - share) < 0.05, (seeded.seed, channel)
        cross = sum(len(c) > 1 for c in _channels_by_incident(seeded).values()) / len(seeded.incidents)
        assert 0.15 <= cross <= 0.25
    per_channel = Counter((t.incident_id, t.channel) for t in world.tickets)
    assert any(n > 1 for n in per_channel.values()), "some incidents are reported twice in one channel"


def test_channels_take_the_kinds_they_take(world: World) -> None:
    incidents = {i.incident_id: i for i in world.incidents}
    city = {"城市管理", "生态环境", "交通运输", "公共安全"}
    for t in world.tickets:
        top = incidents[t.incident_id].top_class
        assert t.channel != "court" or top == "纠纷调解"
        assert t.channel != "mayor" or top == "投诉建议"
        assert t.channel != "open311" or (top == "投诉建议" and t.category_path[1] in city)
        if t.channel == "legalaid":
            assert top in ("法律服务", "纠纷调解")
            assert t.category_path[0] == "法律服务"
    assert {i.category_path for i in world.incidents} == {k.path for k in KINDS}
    problems = Counter(i.problem for i in world.incidents)
    assert problems["施工噪声扰民"] > problems["焦虑抑郁疏导"]
    wage_groups = [i for i in world.incidents if i.problem == "拖欠工资" and i.group]
    assert wage_groups
    assert all(i.head_count > 1 for i in wage_groups)


def test_residents_have_valid_phones_and_national_ids(world: World) -> None:
    for resident in world.residents:
        assert re.fullmatch(r"1[3-9]\d{9}", resident.phone)
        assert resident.id_number.startswith("4403")
        assert id_number_ok(resident.id_number)
    assert len({r.resident_id for r in world.residents}) == len(world.residents)
    assert len({r.phone for r in world.residents}) == len(world.residents)
    seen: dict[str, tuple[str, str]] = {}
    for t in world.tickets:
        ident = (t.resident.phone, t.resident.id_number)
        assert seen.setdefault(t.resident.resident_id, ident) == ident
    assert not id_number_ok("440306198807124318")  # a wrong check digit is caught


def test_other_parties(world: World) -> None:
    court = world.tickets_for("court")
    assert all(t.other_party is not None for t in court)
    for t in world.tickets:
        party = t.other_party
        if party is None:
            continue
        if party.resident_id.startswith("O-"):
            assert credit_code_ok(party.id_number)
        else:
            assert id_number_ok(party.id_number)


def test_the_demo_citizen_appears_in_three_channels_or_more(world: World) -> None:
    mine = [t for t in world.tickets if t.resident.resident_id == "R-CITIZEN"]
    channels = {t.channel for t in mine}
    assert {"hotline12345", "petition", "legalaid"} <= channels
    assert len(channels) >= 3
    assert {t.resident.name for t in mine} == {"陈晓明"}
    assert len({(t.resident.phone, t.resident.id_number) for t in mine}) == 1
    assert id_number_ok(mine[0].resident.id_number)


def test_hard_negatives_look_alike_but_are_other_incidents(world: World) -> None:
    incidents = {i.incident_id: i for i in world.incidents}
    first_seen: dict[str, datetime] = {}
    for t in world.tickets:
        first_seen.setdefault(t.incident_id, t.received_at)
    kinds: Counter[str] = Counter()
    for negative in (i for i in world.incidents if i.negative_of):
        original = incidents[negative.negative_of]  # type: ignore[index]
        assert negative.incident_id != original.incident_id
        assert negative.community == original.community
        if negative.problem == original.problem:
            assert negative.place_name != original.place_name
            kinds["same problem, other place"] += 1
        else:
            assert negative.place_name == original.place_name
            kinds["other problem, same place"] += 1
        gap = abs(first_seen[negative.incident_id] - first_seen[original.incident_id])
        assert gap < timedelta(days=5)
    assert kinds["same problem, other place"] >= 5
    assert kinds["other problem, same place"] >= 5


def test_source_ids_in_each_channels_format(world: World) -> None:
    for channel in CHANNELS:
        ids = [t.source_id for t in world.tickets_for(channel)]
        assert ids
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(ID_FORMATS[channel], i) for i in ids), channel


def test_ticket_fields_are_well_typed(world: World) -> None:
    assert {f.name for f in dataclasses.fields(Ticket)} == set(FIELD_TYPES)
    for t in world.tickets:
        for name, kinds in FIELD_TYPES.items():
            assert isinstance(getattr(t, name), kinds), (t.source_id, name)
        assert all(isinstance(label, str) for label in t.category_path)
        for moment in (t.received_at, t.updated_at):
            assert moment.tzinfo is not None
            assert moment.utcoffset() == timedelta(0)
        assert t.updated_at >= t.received_at
        assert t.stage in STAGES
        assert len(t.category_path) == 4
        assert t.title
        assert t.content


def test_times_and_arrivals(world: World) -> None:
    arriving = sorted((t for t in world.tickets if t.arrives_after), key=lambda t: t.arrives_after)
    assert 35 <= len(arriving) <= 45
    assert [t.arrives_after for t in arriving[:5]] == [20, 40, 60, 80, 100]
    assert max(t.arrives_after for t in arriving) <= 900
    for t in arriving:
        assert t.stage == "new"
        assert t.received_at == NOW + timedelta(seconds=t.arrives_after)
    past = [t for t in world.tickets if not t.arrives_after]
    assert all(NOW - timedelta(days=63) < t.received_at < NOW for t in past)
    recent = sum(t.received_at > NOW - timedelta(days=15) for t in past)
    assert recent > len(past) / 3, "more recent days are denser"
    old = [t for t in past if t.received_at < NOW - timedelta(days=30)]
    assert sum(t.stage in ("done", "closed") for t in old) > 0.6 * len(old)
    assert any(t.stage == "rejected" for t in past)


def test_location_by_channel(world: World) -> None:
    for t in world.tickets:
        located = t.lat is not None and t.lng is not None
        if t.channel in ("mayor", "petition", "court", "legalaid", "shuji", "juzhang"):
            assert not located
            assert t.street
            assert t.address
        elif t.channel == "hotline12345":
            assert located
            assert t.street
        elif t.extra["board"]:
            assert (t.street, t.community, t.address, t.lat, t.lng) == (None,) * 5
        else:
            assert located
    board = [t for t in world.tickets_for("open311") if t.extra["board"]]
    assert 0.3 < len(board) / len(world.tickets_for("open311")) < 0.7


def test_places_lie_near_their_street(world: World) -> None:
    centres = {s.name: (s.lat, s.lng) for s in STREETS}
    for incident in world.incidents:
        lat, lng = centres[incident.street]
        assert incident.community in next(s.communities for s in STREETS if s.name == incident.street)
        assert _km(lat, lng, incident.lat, incident.lng) < 1.6


def _km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    dy = (lat2 - lat1) * 111.0
    dx = (lng2 - lng1) * 111.32 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


def test_channel_extras(world: World) -> None:
    for t in world.tickets_for("petition"):
        assert t.extra["form"] in ("来信", "来访", "网上", "电话")
        assert isinstance(t.extra["head_count"], int)
    assert any(t.extra["head_count"] != 1 for t in world.tickets_for("petition"))
    assert all(isinstance(t.extra["aid_type"], str) for t in world.tickets_for("legalaid"))
    for t in world.tickets_for("court"):
        assert isinstance(t.extra["claim_amount"], int)
        assert t.extra["cause"]
    assert all(t.extra == {} for t in world.tickets_for("mayor"))


def test_mayor_text_is_gbk_encodable(world: World) -> None:
    for t in world.tickets_for("mayor"):
        for text in (t.title, t.content, t.address or "", t.street or "", t.community or "", t.resident.name):
            text.encode("gbk")


def test_reports_of_one_incident_differ_in_wording(world: World) -> None:
    by_incident: dict[str, list[Ticket]] = defaultdict(list)
    for t in world.tickets:
        by_incident[t.incident_id].append(t)
    multi = [ts for ts in by_incident.values() if len(ts) > 1]
    assert multi
    assert all(len({t.content for t in ts}) == len(ts) for ts in multi)
    to_simplified = opencc.OpenCC("t2s")
    traditional = [t for t in world.tickets_for("open311") if to_simplified.convert(t.content) != t.content]
    assert traditional, "some Open311 posts are in traditional characters"


def test_holdout_split(world: World) -> None:
    incidents: dict[str, Incident] = {i.incident_id: i for i in world.incidents}
    assert all(t.eval_split == incidents[t.incident_id].split for t in world.tickets)
    holdout = sum(i.split == "holdout" for i in world.incidents) / len(world.incidents)
    assert 0.15 < holdout < 0.4
    # a holdout-only frame (the fourth of the hotline's and the district-head hotline's) never shows in tune
    markers = ("情绪比较激动", "希望政府重视")
    tune = [t for t in world.tickets if t.eval_split == "tune"]
    assert not any(m in t.content for t in tune for m in markers)
    assert any(m in t.content for t in world.tickets if t.eval_split == "holdout" for m in markers)


async def test_the_sandbox_app_mounts_the_channels_and_routes_faults(world: World) -> None:
    app = create_sandbox(7, world=world, webhook_urls={"hotline12345": "http://127.0.0.1:9/hooks"})
    mounted = set(app.state.channels)
    # channels are written concurrently: the hub mounts each one whose app exists
    built = {key for key in CHANNELS if (Path(sandbox.__file__).parent / key / "app.py").exists()}
    assert mounted == built
    assert "hotline12345" in mounted
    with serve(app) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            truth = (await client.get("/__sandbox/truth")).json()
            assert set(truth["incidents"]) == {i.incident_id for i in world.incidents}
            assert truth["splits"]["INC-00001"] in ("tune", "holdout")
            assert truth["hard_negatives"]
            pairs = {(r["channel"], r["source_id"]) for rs in truth["incidents"].values() for r in rs}
            assert pairs == {(t.channel, t.source_id) for t in world.tickets}

            answer = await client.post("/__sandbox/faults", json={"channel": "hotline12345", "down": True})
            assert answer.json()["down"] is True
            assert (await client.post("/hotline12345/oauth/token", data={})).status_code == 503
            faults = (await client.get("/__sandbox/faults")).json()["channels"]
            assert faults["hotline12345"]["down"]
            assert not any(f["down"] for k, f in faults.items()
                                                              if k != "hotline12345")
            await client.post("/__sandbox/faults", json={"channel": "all", "reset": True})
            assert (await client.post("/hotline12345/oauth/token", data={})).status_code != 503
            assert (await client.post("/__sandbox/faults", json={"channel": "fax"})).status_code == 400

            stats = (await client.get("/__sandbox/stats")).json()
            assert set(stats["channels"]) == mounted
            assert stats["channels"]["hotline12345"]["total"] >= 2
            assert stats["total"] >= 2
            mine = (await client.get("/hotline12345/__sandbox/stats")).json()
            assert mine["total"] == stats["channels"]["hotline12345"]["total"]


def test_main_rejects_a_bad_webhook() -> None:
    with pytest.raises(SystemExit):
        main(["--port", "1", "--webhook", "hotline12345"])


def test_main_generates_the_world_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr("sandbox.app.uvicorn.run", lambda app, **_: served.append(app))
    assert main(["--port", "1", "--incidents", "8", "--now", "2026-11-16T00:00:00+08:00"]) == 0
    assert served[0].state.world.now == datetime(2026, 11, 15, 16, 0, tzinfo=UTC)
    with pytest.raises(SystemExit):
        main(["--port", "1", "--now", "last tuesday"])


def test_gateway_cli_rejects_a_bad_now(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sandbox", "--port", "1", "--now", "2026-13-01"]) == 2
    assert "--now: not an ISO 8601 date and time: '2026-13-01'" in capsys.readouterr().err


def _moved(ticket: Ticket, by: timedelta) -> dict[str, object]:
    """A ticket's fields with its times moved ``by``, leaving out those that spell a date: ids and people
    (national ID numbers carry a birthday counted back from the world's date)."""
    fields = dataclasses.asdict(ticket)
    for name in ("source_id", "resident", "other_party"):
        del fields[name]
    return {name: value + by if isinstance(value, datetime) else value for name, value in fields.items()}


def test_worlds_made_whole_weeks_apart_are_one_world_moved() -> None:
    # what the benches rely on to compare figures across days (bench.harness.stack, at week_start())
    monday = datetime(2026, 11, 15, 16, 0, tzinfo=UTC)
    world = generate_world(3, monday, incidents=120)
    for weeks in (1, 9):
        later = generate_world(3, monday + timedelta(weeks=weeks), incidents=120)
        assert [_moved(t, timedelta(weeks=weeks)) for t in world.tickets] == [
            _moved(t, timedelta()) for t in later.tickets]
    # ... which a day apart they are not: the time of week shapes the world
    tuesday = generate_world(3, monday + timedelta(days=1), incidents=120)
    moved_a_day = [_moved(t, timedelta(days=1)) for t in world.tickets]
    assert moved_a_day != [_moved(t, timedelta()) for t in tuesday.tickets]


@pytest.mark.parametrize(("at", "start"), [
    ("2026-11-24T09:30:00+08:00", "2026-11-23T00:00:00+08:00"),
    ("2026-11-23T00:00:00+08:00", "2026-11-23T00:00:00+08:00"),
    ("2026-11-22T23:59:59+08:00", "2026-11-16T00:00:00+08:00"),
    ("2026-11-22T17:00:00+00:00", "2026-11-23T00:00:00+08:00"),  # Monday 01:00 in Beijing
])
def test_week_start_is_the_latest_monday_midnight_in_beijing(at: str, start: str) -> None:
    begun = week_start(datetime.fromisoformat(at))
    assert begun == datetime.fromisoformat(start)
    assert begun.tzinfo == UTC


def test_a_world_over_more_days_keeps_the_demos_density() -> None:
    # the scale bench grows its store by years, not by denser weeks: a world ten times the demo's over
    # ten times the days has about the demo's reports in its latest 60 days, and its older days even
    def received(world: World) -> list[float]:
        return [(NOW - t.received_at).total_seconds() / 86400 for t in world.tickets if t.received_at <= NOW]

    demo = len(received(generate_world(3, NOW, incidents=400)))
    ages = received(generate_world(3, NOW, incidents=4000, days=600))
    assert 0.8 * demo < sum(1 for age in ages if age < 60) < 1.25 * demo
    per_stretch = Counter(int((age - 60) // 135) for age in ages if 60 <= age < 600)  # four of 135 days
    assert len(per_stretch) == 4
    assert max(per_stretch.values()) < 1.3 * min(per_stretch.values())

"""A record that cannot be normalised is quarantined with its reason; the channel carries on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from sandbox.mayor.app import create_app as mayor_app
from sandbox.world import Resident, Ticket
from tests.e2e import SCRATCH_DBS, gateway_settings, redis_db_url, start_gateway, write_channels_file
from tests.servers import serve

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
RESIDENT = Resident("R1", "李四", "13912345678", "440306199001011234")


def _ticket(number: int, title: str) -> Ticket:
    at = NOW - timedelta(hours=number)
    return Ticket(channel="mayor", source_id=f"QZ2026{number:06d}", incident_id=f"I{number}",
                  resident=RESIDENT, title=title, content="小区门口占道经营，影响通行。",
                  category_path=("投诉建议", "城市管理", "市容环境", "占道经营"), street="玉塘街道",
                  community="田寮社区", address="田寮路1号", lat=22.715, lng=113.925, received_at=at,
                  updated_at=at, stage="accepted")


def test_a_bad_record_is_quarantined_and_the_rest_come_through(
        redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tickets = [_ticket(1, "占道经营"), _ticket(2, ""), _ticket(3, "门口摆摊")]
    url = redis_db_url(redis_url, SCRATCH_DBS[2])
    with serve(mayor_app(tickets)) as mayor_url:
        channels_file = write_channels_file(tmp_path, mayor_url, only=("mayor",), urls={"mayor": mayor_url})
        settings = gateway_settings(url, channels_file, mayor_url)
        with start_gateway(settings) as graph:
            data = graph.data("""{ cases { totalCount nodes { sourceId } }
                                   channels { key quarantined }
                                   quarantine(channel: "mayor") { channel sourceId reason raw at } }""")
            ready = httpx.get(f"{graph.base_url}/readyz").json()
    assert sorted(node["sourceId"] for node in data["cases"]["nodes"]) == ["QZ2026000001", "QZ2026000003"]
    assert data["channels"] == [{"key": "mayor", "quarantined": 1}]
    [record] = data["quarantine"]
    assert record["sourceId"] == "QZ2026000002"
    assert record["reason"]
    assert ready["channels"][0]["quarantined"] == 1

    monkeypatch.setenv("REDIS_URL", url)
    assert main(["quarantine", "mayor"]) == 0
    listed = capsys.readouterr().out
    assert "QZ2026000002" in listed
    assert "mayor" in listed

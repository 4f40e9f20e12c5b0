"""The audit log: entries written as JSON lines, rotated by size and day, pruned after retention."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.audit import AuditLog, Outcome
from auth.viewer import Role, Viewer

CENTER = Viewer("user:center", "center", "光明区民生诉求指挥中心", frozenset({Role.DISTRICT}))


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def file_names(directory: Path) -> list[str]:
    return sorted(file.name for file in directory.iterdir())


def all_lines(directory: Path) -> list[dict[str, Any]]:
    return [entry for file in sorted(directory.iterdir()) for entry in lines(file)]


async def test_entries_are_json_lines(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.record(CENTER, "unmask", "Case:hotline12345:GD2024001", fields=["name", "phone"],
                 request_id="req-1", ip="10.0.0.8")
    audit.record(CENTER, "dispatchCluster", "Cluster:42", outcome=Outcome.DENIED, detail="不在辖区")
    await audit.flush()
    first, second = lines(tmp_path / "audit.jsonl")
    assert first["user"] == "center"
    assert first["subject"] == "user:center"
    assert first["roles"] == ["district"]
    assert (first["action"], first["object"], first["fields"]) == ("unmask", "Case:hotline12345:GD2024001",
                                                                   ["name", "phone"])
    assert (first["outcome"], first["request_id"], first["ip"]) == ("ok", "req-1", "10.0.0.8")
    assert first["time"].endswith("Z")
    assert (second["outcome"], second["detail"]) == ("denied", "不在辖区")
    assert "不在辖区" in (tmp_path / "audit.jsonl").read_text(encoding="utf-8")  # readable Chinese
    await audit.aclose()


async def test_appends_across_restarts(tmp_path: Path) -> None:
    for run in range(2):
        audit = AuditLog(tmp_path / "audit.jsonl")
        audit.record(CENTER, "signAssignment", f"Assignment:{run}")
        await audit.aclose()
    assert [entry["object"] for entry in lines(tmp_path / "audit.jsonl")] == ["Assignment:0", "Assignment:1"]


async def test_rotation_by_size_keeps_every_entry(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=UTC))
    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=2048, clock=clock)
    for i in range(60):
        audit.record(CENTER, "unmask", f"Case:{i}", fields=["phone"])
        if i % 10 == 9:
            await audit.flush()  # several batches, so the size check runs between them
    await audit.aclose()
    names = file_names(tmp_path)
    assert "audit.2026-11-20.jsonl" in names
    assert "audit.2026-11-20.1.jsonl" in names
    assert sorted(int(entry["object"].split(":")[1]) for entry in all_lines(tmp_path)) == list(range(60))


async def test_rotation_by_day_and_retention(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    audit = AuditLog(tmp_path / "audit.jsonl", retention_days=3, clock=clock)
    for day in range(6):
        audit.record(CENTER, "addProgress", f"Assignment:{day}")
        await audit.flush()
        clock.now += timedelta(days=1)
    await audit.aclose()
    names = file_names(tmp_path)
    # Written on 1–6 January; on the 6th, files from before 3 January are past retention.
    assert names == ["audit.2026-01-03.jsonl", "audit.2026-01-04.jsonl", "audit.2026-01-05.jsonl",
                     "audit.jsonl"]
    assert lines(tmp_path / "audit.jsonl")[0]["object"] == "Assignment:5"


async def test_a_file_left_from_an_earlier_day_is_rotated_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"old": true}\n', encoding="utf-8")
    yesterday = datetime(2026, 3, 1, 23, tzinfo=UTC).timestamp()
    os.utime(path, (yesterday, yesterday))
    audit = AuditLog(path, clock=Clock(datetime(2026, 3, 2, 1, tzinfo=UTC)))
    audit.record(CENTER, "resolveCluster", "Cluster:7")
    await audit.aclose()
    assert lines(tmp_path / "audit.2026-03-01.jsonl") == [{"old": True}]
    assert lines(path)[0]["object"] == "Cluster:7"


async def test_closed_log_refuses_writes_and_bad_settings(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    await audit.aclose()
    with pytest.raises(RuntimeError):
        audit.record(CENTER, "unmask", "Case:1")
    with pytest.raises(ValueError, match="retention"):
        AuditLog(tmp_path / "other.jsonl", retention_days=0)

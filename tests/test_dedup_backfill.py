"""`minsheng backfill CHANNEL --since DATE` against the sandbox over HTTP: clusters, progress, resume."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import redis

from casework import keys
from gateway.cli import main
from tests.e2e import *  # noqa: F403 (fixtures)
from tests.e2e import SandboxServer, redis_db_url, write_channels_file

BACKFILL_DB = 12


@pytest.mark.usefixtures("collector_kept")  # the command sets it for its process
def test_backfill_takes_history_in_and_resumes(sandbox: SandboxServer, redis_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = redis_db_url(redis_url, BACKFILL_DB)
    monkeypatch.setenv("REDIS_URL", url)
    channels_file = write_channels_file(tmp_path, sandbox.url, only=("open311",))
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(channels_file))
    monkeypatch.setenv("MINSHENG_GC_YOUNG", "4321")
    older = gc.get_threshold()[1:]
    assert main(["backfill", "open311", "--since", "2000-01-01"]) == 0
    assert gc.get_threshold() == (4321, *older)  # the young threshold as configured, the rest kept
    first = capsys.readouterr().err
    client = redis.Redis.from_url(url)
    cases = [k.decode() for k in client.zrange(keys.ALL_CASES, 0, -1)]
    assert cases
    assert all(client.hget(keys.case(k), "cluster") for k in cases)
    assert client.hget(keys.BACKFILL_CURSORS, "open311")
    assert "open311 [" in first
    assert f"{len(cases)} taken in and clustered" in first
    assert main(["backfill", "open311", "--since", "2000-01-01"]) == 0
    again = capsys.readouterr().err
    assert "(resumed)" in again
    resumed = len([k for k in client.zrange(keys.ALL_CASES, 0, -1)])
    # it continued after the saved cursor instead of reading the channel again from the start
    assert resumed - len(cases) < len(cases) / 2
    assert main(["backfill", "open311", "--since", "2100-01-01", "--restart"]) == 0
    assert " 0 taken in" in capsys.readouterr().err
    assert main(["backfill", "nosuch", "--since", "2000-01-01"]) == 2
    client.close()

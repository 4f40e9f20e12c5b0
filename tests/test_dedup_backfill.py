"""`minsheng backfill CHANNEL --since DATE` against the sandbox over HTTP: clusters, progress, resume, and
a channel that stops answering."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from casework import backfill as backfill_module
from casework import keys
from casework.backfill import BackfillInterrupted, BackfillProgress, backfill
from casework.channels import ChannelSet
from casework.clusters import ClusterStore
from casework.reference import Reference
from casework.store import CaseStore
from gateway.channels import load_channels
from gateway.cli import main
from gateway.embedded import redis_client
from gateway.settings import Settings
from tests.e2e import *  # noqa: F403 (fixtures)
from tests.e2e import SandboxServer, redis_db_url, write_channels_file
from tests.servers import free_port

BACKFILL_DB = 12
LATENCY_MS = 800  # longer than taking a sandbox page in, so a page asked for meanwhile is still waiting


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


def test_a_channel_that_stays_down_stops_the_backfill_with_a_clear_message(
        sandbox: SandboxServer, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = redis_db_url(redis_url, BACKFILL_DB)
    monkeypatch.setenv("REDIS_URL", url)
    channels_file = write_channels_file(tmp_path, sandbox.url, only=("open311",))
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(channels_file))
    monkeypatch.setattr(backfill_module, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(backfill_module, "RETRIES", 3)  # fewer failures than open the circuit (30 s)
    sandbox.faults("open311", down=True)
    try:
        assert main(["backfill", "open311", "--since", "2000-01-01"]) == 1
    finally:
        sandbox.faults("open311", down=False)
    said = capsys.readouterr().err
    assert "the backfill of open311 stopped: GET /open311/requests.json: 503 (4 times in a row)" in said
    assert "the same command resumes" in said
    assert "0 taken in and clustered" in said
    assert "3 retries" in said
    assert "Traceback" not in said


def test_a_backfill_rides_out_an_outage_and_resumes_where_it_stopped(
        sandbox: SandboxServer, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = redis_db_url(redis_url, BACKFILL_DB)
    channels_file = write_channels_file(tmp_path, sandbox.url, only=("open311",))
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(channels_file))
    settings = Settings()
    client = redis.Redis.from_url(url)

    async def run(on_page: Callable[[BackfillProgress], None], **options: Any) -> BackfillProgress:
        configs = load_channels(settings.channels_file, settings.interpolation())
        store_client = redis_client(url)
        try:
            reference = Reference.load()
            store = CaseStore(store_client, reference, hash_key=settings.hash_key.get_secret_value().encode())
            async with ChannelSet(configs) as channels:
                clusters = ClusterStore(store_client, store, reference)
                options.setdefault("batch_records", 1)  # a page at a time: the outage comes between pages
                return await backfill(channels["open311"], store, clusters, datetime(2000, 1, 1, tzinfo=UTC),
                                      progress=on_page, **options)
        finally:
            await store_client.aclose()

    calls: list[int] = []

    def down_after_first_page(state: BackfillProgress) -> None:
        """Down once the first batch is taken in (a page with records: the feed's first may be empty).
        The channel answers slowly meanwhile (LATENCY_MS), and tells a request it is down after that
        wait: the next page, asked for while the batch was taken in, is still waiting, and fails."""
        calls.append(state.pages)
        if len(calls) == 1:
            sandbox.faults("open311", down=True)

    # down for good after the first batch: it stops, what it took in kept and its cursor saved
    sandbox.faults("open311", latency_ms=LATENCY_MS)
    try:
        with pytest.raises(BackfillInterrupted) as stopped:
            asyncio.run(run(down_after_first_page, retries=2, first_pause=0.01))
    finally:
        sandbox.faults("open311", down=False, latency_ms=0)
    got = stopped.value.progress
    assert got.pages >= 1
    assert got.retries == 2
    assert "503" in str(stopped.value)
    assert client.hget(keys.BACKFILL_CURSORS, "open311").decode() == got.cursor
    kept = client.zcard(keys.ALL_CASES)
    assert kept == got.taken > 0

    # run again: it resumes after that batch and reads the channel to its end
    again = asyncio.run(run(lambda state: None))
    assert again.resumed
    assert again.retries == 0
    assert client.zcard(keys.ALL_CASES) == kept + again.taken
    assert again.taken > 0
    cases = [k.decode() for k in client.zrange(keys.ALL_CASES, 0, -1)]
    assert all(client.hget(keys.case(k), "cluster") for k in cases)

    # batches: pages are taken in together until they hold batch_records records, the cursor saved after
    seen: list[tuple[int, int]] = []
    together = asyncio.run(run(lambda state: seen.append((state.pages, state.read)), restart=True,
                               batch_records=10_000))
    assert seen == [(together.pages, together.read)]  # one batch: the whole channel
    assert together.pages >= 2  # several pages, taken in together
    assert client.hget(keys.BACKFILL_CURSORS, "open311").decode() == together.cursor

    # down for a moment (back by the time it asks again): it carries on by itself
    class BackOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sandbox.faults("open311", down=False)

    handler = BackOnRetry(logging.WARNING)
    logger = logging.getLogger("casework.backfill")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    calls.clear()
    sandbox.faults("open311", latency_ms=LATENCY_MS)
    try:
        whole = asyncio.run(run(down_after_first_page, restart=True, first_pause=0.01))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        sandbox.faults("open311", down=False, latency_ms=0)
    assert whole.retries == 1
    assert whole.pages >= 2
    # read again from the start: the same cases (and any the channel took since), none lost
    assert client.zcard(keys.ALL_CASES) >= len(cases)
    assert again.read < whole.read  # the resumed run read on from its cursor, not from the start
    client.close()


def test_a_backfill_says_what_is_wrong_with_its_setup_without_a_traceback(
        sandbox: SandboxServer, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_db_url(redis_url, BACKFILL_DB))
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(tmp_path / "missing.yaml"))
    assert main(["backfill", "open311", "--since", "2000-01-01"]) == 2
    said = capsys.readouterr().err
    assert "missing.yaml: cannot read the channels file" in said
    assert "Traceback" not in said

    channels_file = write_channels_file(tmp_path, sandbox.url, only=("open311",))
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(channels_file))
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert main(["backfill", "open311", "--since", "2000-01-01"]) == 1
    said = capsys.readouterr().err
    assert "cannot use the Redis at redis://127.0.0.1:" in said
    assert "Traceback" not in said


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_backfill_says_how_to_resume(sandbox: SandboxServer, redis_url: str,
                                                    tmp_path: Path) -> None:
    url = redis_db_url(redis_url, BACKFILL_DB)
    channels_file = write_channels_file(tmp_path, sandbox.url, only=("open311",))
    env = {**os.environ, "REDIS_URL": url, "MINSHENG_CHANNELS_FILE": str(channels_file)}
    client = redis.Redis.from_url(url)
    sandbox.faults("open311", latency_ms=700)  # slow enough to be stopped half-way
    try:
        # Ctrl-C at a terminal reaches a command whose SIGINT is the default; a test run started in the
        # background (`make test &`) ignores SIGINT, and the command would inherit that and run on
        running = subprocess.Popen([sys.executable, "-m", "gateway.cli", "backfill", "open311", "--since",
                                    "2000-01-01", "--batch", "1"], env=env, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_default_interrupt)
        deadline = time.monotonic() + 60
        while client.hget(keys.BACKFILL_CURSORS, "open311") is None and running.poll() is None:
            assert time.monotonic() < deadline, "no page was finished"
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)  # Ctrl-C
        _, said = running.communicate(timeout=60)
    finally:
        sandbox.faults("open311", latency_ms=0)
    assert running.returncode == 130
    assert "the backfill of open311 was interrupted; the same command resumes" in said
    assert "Traceback" not in said
    client.close()

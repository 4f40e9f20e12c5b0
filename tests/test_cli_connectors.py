"""``minsheng connectors list`` and ``minsheng connectors check KEY`` against the sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from sandbox.app import create_sandbox
from tests.e2e import write_channels_file
from tests.servers import serve


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with serve(create_sandbox(7)) as url:
        httpx.post(f"{url}/__sandbox/arrive").raise_for_status()
        yield url


@pytest.fixture
def channels_file(tmp_path: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_channels_file(tmp_path, sandbox_url)
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(path))
    return path


def test_list_names_installed_connectors_and_wired_channels(channels_file: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "list"]) == 0
    out = capsys.readouterr().out
    assert "declarative" in out
    assert "connectors.declarative:DeclarativeConnector" in out
    assert "局长信箱" in out
    assert "shuji" in out


@pytest.mark.parametrize("key", ["juzhang", "hotline12345", "mayor"])
def test_check_prints_one_normalised_record(key: str, channels_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "check", key]) == 0
    out = capsys.readouterr().out
    assert "configuration: ok" in out
    assert "reachability: ok" in out
    sample = json.loads(out.split("sample record:\n", 1)[1])
    assert sample["channel"] == key
    assert sample["received_at"].endswith("Z") or sample["received_at"].endswith("+00:00")


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_check_names_refused_credentials(channels_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(channels_file, "sandbox-juzhang-secret", "wrong-secret")
    assert main(["connectors", "check", "juzhang"]) == 3
    assert "credentials: refused" in capsys.readouterr().err


def test_check_names_an_unreachable_url(channels_file: Path, sandbox_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(channels_file, f"{sandbox_url}/shuji", "http://127.0.0.1:9/shuji")
    assert main(["connectors", "check", "shuji"]) == 3
    assert "cannot reach http://127.0.0.1:9/shuji" in capsys.readouterr().err


def test_check_lists_configuration_problems(channels_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(channels_file, "api_key: sandbox-shuji-key", "other: x")
    assert main(["connectors", "check", "shuji"]) == 2
    assert "credentials.api_key is required" in capsys.readouterr().err
    assert main(["connectors", "check", "fax"]) == 2

"""The channels file: interpolation, secrets from files, and every problem reported at once."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors import ConfigError
from gateway.channels import load_channels
from gateway.cli import main
from gateway.runtime import tune_gc
from gateway.settings import DEFAULT_CHANNELS_FILE, Settings
from tests.servers import free_port

KNOWN = ("hotline12345", "mayor", "court", "legalaid", "petition", "open311", "declarative")


def test_the_default_file_wires_the_eight_sandbox_channels() -> None:
    settings = Settings(port=8123)
    configs = load_channels(DEFAULT_CHANNELS_FILE, settings.interpolation(), known_connectors=KNOWN)
    assert [c.key for c in configs] == [*KNOWN[:-1], "shuji", "juzhang"]
    assert [c.connector for c in configs[-2:]] == ["declarative", "declarative"]
    spec_file = Path(configs[-1].options["spec_file"])  # made absolute, relative to the channels file
    assert spec_file.is_absolute()
    assert spec_file == DEFAULT_CHANNELS_FILE.parent / "channels.d" / "juzhang.yaml"
    assert configs[0].base_url == "http://127.0.0.1:8123/sandbox/hotline12345"
    assert all(2 <= c.poll_interval <= 5 for c in configs)
    assert configs[1].credentials == {"api_key": "sandbox-mayor-key"}


def test_interpolation_defaults_and_secret_files(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cret\n", encoding="utf-8")
    path = tmp_path / "channels.yaml"
    path.write_text("""channels:
  - key: mayor
    connector: mayor
    name: 区长热线
    base_url: ${BASE:-http://localhost:9}/mayor
    credentials: {api_key_file: secret.txt, other: "${OTHER}", literal: "$${KEEP}"}
    options: {page_size: 20}
""", encoding="utf-8")
    [config] = load_channels(path, {"OTHER": "x"}, known_connectors=KNOWN)
    assert config.base_url == "http://localhost:9/mayor"
    assert config.credentials == {"api_key": "s3cret", "other": "x", "literal": "${KEEP}"}
    assert config.options == {"page_size": 20}
    assert config.name == "区长热线"


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("""channels:
  - key: mayor
    connector: nosuchconnector
    base_url: http://x/mayor
  - key: Bad Key
    connector: court
    base_url: not-a-url
    timeout: -1
    colour: red
  - key: court
    connector: court
    base_url: ${MISSING}/court
    credentials: {secret_file: /no/such/file}
  - key: court
    connector: court
    base_url: http://x/court
  - just a string
""", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_channels(path, {}, known_connectors=KNOWN)
    problems = "\n".join(caught.value.problems)
    expected_problems = ("unknown connector 'nosuchconnector'", "channels[1] (Bad Key).key", ".base_url",
                         ".timeout", ".colour", "${MISSING}", "/no/such/file",
                         "duplicate channel key 'court'", "channels[4]")
    for expected in expected_problems:
        assert expected in problems, expected
    assert len(caught.value.problems) >= 9


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_channels(tmp_path / "none.yaml", {}, known_connectors=KNOWN)
    broken = tmp_path / "broken.yaml"
    broken.write_text("channels: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_channels(broken, {}, known_connectors=KNOWN)
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="'channels' list"):
        load_channels(empty, {}, known_connectors=KNOWN)


def test_settings_read_only_documented_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC", "0")
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("MINSHENG_SANDBOX_URL", "http://sandbox:9000/")
    monkeypatch.delenv("MINSHENG_ENV", raising=False)
    settings = Settings()
    assert settings.sync is True
    assert settings.env == "development"
    assert settings.port == 9123
    assert settings.sandbox_url == "http://sandbox:9000"
    assert settings.interpolation()["MINSHENG_SANDBOX_URL"] == "http://sandbox:9000"


def test_minsheng_up_lists_the_problems_and_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  - {key: mayor, connector: nosuch, base_url: nowhere}\n", encoding="utf-8")
    monkeypatch.setenv("MINSHENG_CHANNELS_FILE", str(path))
    assert main(["up", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown connector 'nosuch'" in err
    assert "base_url" in err


@pytest.mark.usefixtures("collector_kept")
def test_the_collector_threshold_is_set_or_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINSHENG_GC_YOUNG", raising=False)
    before = gc.get_threshold()
    assert Settings().gc_young == 10_000
    assert tune_gc(0) == before
    assert gc.get_threshold() == before  # 0: Python's own threshold stays
    assert tune_gc(12_345) == before
    assert gc.get_threshold() == (12_345, *before[1:])
    monkeypatch.setenv("MINSHENG_GC_YOUNG", "-1")
    with pytest.raises(ValueError, match="MINSHENG_GC_YOUNG"):
        Settings()


def test_commands_name_an_unreachable_redis_in_one_line_without_its_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:s3cret@127.0.0.1:{free_port()}/0")  # nothing listens there
    for command in (["up", "--port", str(free_port())], ["quarantine"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith("minsheng: cannot use the Redis at redis://:***@127.0.0.1:")
        assert "s3cret" not in err
        assert "Traceback" not in err


def test_a_setting_that_does_not_parse_is_named_without_its_value(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MINSHENG_GC_YOUNG", "many")
    assert main(["up", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minsheng: MINSHENG_GC_YOUNG: Input should be a valid integer")
    assert "many" not in err
    assert "Traceback" not in err
    monkeypatch.delenv("MINSHENG_GC_YOUNG")
    monkeypatch.setenv("REDIS_URL", "localhost:6379")  # no scheme: redis-py would refuse it at first use
    assert main(["quarantine"]) == 2
    assert "minsheng: REDIS_URL: Value error, must start with redis://" in capsys.readouterr().err
    with pytest.raises(ValidationError):
        Settings()

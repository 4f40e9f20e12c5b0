"""The channels file: which channel systems this deployment connects to, and how.

A YAML file with one entry per channel::

    channels:
      - key: hotline12345                  # the channel's key in the graph, unique
        connector: hotline12345            # entry-point name in the ``minsheng.connectors`` group
        name: 12345热线
        base_url: ${MINSHENG_SANDBOX_URL}/hotline12345
        credentials:                       # the gateway's own service credentials
          client_id: minsheng-gateway
          client_secret_file: /run/secrets/hotline   # ``<name>_file``: read <name> from that file
        options: {}                        # connector options
        timeout: 5                         # seconds per upstream request
        poll_interval: 3                   # seconds between sync passes

Options whose name ends in ``_file`` (e.g. the declarative connector's ``spec_file``) are paths
relative to the channels file; they are made absolute here.

Strings may use ``${VAR}`` and ``${VAR:-default}`` (``$${`` stands for a literal ``${``); the
variables come from the mapping the settings pass in, never from the environment directly.
:func:`load_channels` reports every problem of the file at once in one :class:`ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors import ChannelConfig, ConfigError, registry

__all__ = ["interpolate", "load_channels", "parse_channels"]

_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_KEY = r"^[a-z][a-z0-9_-]{0,63}$"
_FILE_SUFFIX = "_file"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(pattern=_KEY)
    connector: str = Field(min_length=1)
    name: str | None = None
    base_url: str = Field(pattern=r"^https?://\S+$")
    credentials: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(10.0, gt=0, le=300)
    poll_interval: float = Field(5.0, gt=0, le=86400)


def interpolate(value: Any, variables: Mapping[str, str], where: str, problems: list[str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``value``; unknown ones are problems."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name in variables and variables[name] != "":
                return variables[name]
            if default is not None:
                return default
            problems.append(f"{where}: variable ${{{name}}} is not set and has no default")
            return ""
        return _VARIABLE.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, variables, f"{where}.{k}", problems) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _read_secret_files(entry: dict[str, Any], base_dir: Path, where: str, problems: list[str]) -> None:
    credentials = entry.get("credentials")
    if not isinstance(credentials, Mapping):
        return
    resolved: dict[str, Any] = {}
    for name, value in credentials.items():
        if not (isinstance(name, str) and name.endswith(_FILE_SUFFIX)):
            resolved[name] = value
            continue
        path = base_dir / str(value)
        try:
            resolved[name.removesuffix(_FILE_SUFFIX)] = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{where}.credentials.{name}: cannot read {path} ({exc.strerror or exc})")
    entry["credentials"] = resolved
    options = entry.get("options")
    if isinstance(options, Mapping):
        entry["options"] = {name: str(base_dir / value) if str(name).endswith(_FILE_SUFFIX)
                            and isinstance(value, str) else value for name, value in options.items()}


def _validate_entry(raw: Any, where: str, known: Collection[str], problems: list[str]) -> _Entry | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with key, connector, base_url …")
        return None
    try:
        entry = _Entry.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}.{field}: {error['msg']}")
        entry = None
    connector = raw.get("connector")
    if isinstance(connector, str) and connector and connector not in known:
        installed = ", ".join(sorted(known)) or "none installed"
        problems.append(f"{where}.connector: unknown connector {connector!r} (installed: {installed})")
        return None
    return entry


def parse_channels(document: Any, variables: Mapping[str, str], *, base_dir: Path,
                   known_connectors: Collection[str]) -> list[ChannelConfig]:
    """Validate a parsed channels document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    entries = document.get("channels") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigError(["the file must hold a mapping with a 'channels' list"])
    configs: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        where = f"channels[{index}]"
        if isinstance(raw, Mapping):
            where = f"channels[{index}] ({raw.get('key', '?')})"
            raw = interpolate(dict(raw), variables, where, problems)
            _read_secret_files(raw, base_dir, where, problems)
            key = raw.get("key")
            if isinstance(key, str) and key in seen:
                problems.append(f"{where}.key: duplicate channel key {key!r}")
            seen.add(str(key))
        entry = _validate_entry(raw, where, known_connectors, problems)
        if entry is None:
            continue
        configs.append(ChannelConfig(key=entry.key, connector=entry.connector, name=entry.name or entry.key,
                                     base_url=entry.base_url.rstrip("/"), credentials=entry.credentials,
                                     options=entry.options, timeout=entry.timeout,
                                     poll_interval=entry.poll_interval))
    if problems:
        raise ConfigError(problems)
    return configs


def load_channels(path: Path, variables: Mapping[str, str], *,
                  known_connectors: Collection[str] | None = None) -> list[ChannelConfig]:
    """Read and validate the channels file at ``path``.

    Args:
        path: the YAML file.
        variables: what ``${VAR}`` may refer to (the settings pass the environment plus derived values).
        known_connectors: connector names that exist (default: the installed entry points).

    Raises:
        ConfigError: the file is missing, unreadable or invalid; ``problems`` lists every problem.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the channels file ({exc.strerror or exc})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    known = registry.available().keys() if known_connectors is None else known_connectors
    return parse_channels(document, variables, base_dir=path.parent, known_connectors=known)

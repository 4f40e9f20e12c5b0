"""``minsheng connectors list`` and ``minsheng connectors check KEY``: what is installed and wired, and
whether one channel works — its configuration, reachability and one sample normalised record."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from connectors import (
    AuthenticationFailed,
    ChannelConfig,
    ConfigError,
    Connector,
    RateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    registry,
)
from gateway.channels import load_channels
from gateway.settings import Settings

__all__ = ["add_parser", "run"]

OK, CONFIG_PROBLEM, UPSTREAM_PROBLEM = 0, 2, 3


def add_parser(commands: Any) -> None:
    """Add ``connectors list`` and ``connectors check KEY`` to the ``minsheng`` command."""
    parser = commands.add_parser("connectors", help="list installed connectors, check a configured channel")
    sub = parser.add_subparsers(dest="connectors_command", required=True)
    sub.add_parser("list", help="installed connectors and the channels the channels file wires")
    check = sub.add_parser("check", help="configuration, reachability and one sample record of a channel")
    check.add_argument("key", help="the channel's key in the channels file")


def run(args: argparse.Namespace) -> int:
    """Run a ``connectors`` subcommand; returns the exit status (0 ok, 2 configuration, 3 upstream)."""
    settings = Settings()
    try:
        configs = load_channels(settings.channels_file, settings.interpolation())
    except ConfigError as exc:
        return _problems(f"the channels file {settings.channels_file} has problems:", exc.problems)
    if args.connectors_command == "list":
        return _list(configs)
    return asyncio.run(_check(configs, args.key))


def _problems(headline: str, problems: list[str]) -> int:
    print(f"minsheng: {headline}", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return CONFIG_PROBLEM


def _list(configs: list[ChannelConfig]) -> int:
    print("installed connectors (entry points 'minsheng.connectors'):")
    for name, target in sorted(registry.available().items()):
        print(f"  {name:<16} {target}")
    print("channels wired by the channels file:")
    for config in configs:
        print(f"  {config.key:<16} {config.connector:<14} {config.name:<16} {config.base_url}")
    return OK


async def _check(configs: list[ChannelConfig], key: str) -> int:
    config = next((c for c in configs if c.key == key), None)
    if config is None:
        known = ", ".join(c.key for c in configs)
        return _problems(f"no channel {key!r} in the channels file", [f"known: {known}"])
    try:
        connector = registry.load(config.connector)(config)
    except ConfigError as exc:
        return _problems(f"channel {key!r} is misconfigured:", exc.problems)
    info = connector.describe()
    print(f"configuration: ok ({info.name}, connector {config.connector}, kind {info.kind}, "
          f"capabilities {_capabilities(info.capabilities)})")
    try:
        sample = await _sample(connector)
    except AuthenticationFailed as exc:
        print(f"credentials: refused by {config.base_url} ({exc}); check credentials in the channels file",
              file=sys.stderr)
        return UPSTREAM_PROBLEM
    except RateLimited as exc:
        print(f"reachability: throttled (retry after {exc.retry_after:.0f} s)", file=sys.stderr)
        return UPSTREAM_PROBLEM
    except UpstreamUnavailable as exc:
        print(f"reachability: cannot reach {config.base_url} ({exc}); check base_url", file=sys.stderr)
        return UPSTREAM_PROBLEM
    except UpstreamRejected as exc:
        print(f"reachability: {config.base_url} refused the request ({exc}); check base_url and options",
              file=sys.stderr)
        return UPSTREAM_PROBLEM
    print(f"reachability: ok ({config.base_url})")
    if sample is None:
        print("sample: the channel has no records yet")
    else:
        print("sample record:")
        print(json.dumps(sample, ensure_ascii=False, indent=2))
    return OK


async def _sample(connector: Connector) -> dict[str, Any] | None:
    async with connector:
        async for page in connector.changes(None):
            for record in page.records:
                return record.model_dump(mode="json")
            if page.rejected:
                bad = page.rejected[0]
                return {"quarantined": str(bad)}
    return None


def _capabilities(capabilities: Any) -> str:
    names = [name for name in ("pull", "push", "batch_get", "write_back") if getattr(capabilities, name)]
    return ", ".join(names) + f", batch ≤{capabilities.batch_limit}"

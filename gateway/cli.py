"""``minsheng``: run the gateway, serve the sandbox channels, look into the quarantine.

    minsheng up [--host H] [--port N]                  the gateway (PORT / MINSHENG_HOST by default)
    minsheng sandbox --port N [--seed S] [--now ISO]   the sandbox channel systems, each under /<key>/
    minsheng quarantine [CHANNEL] [--limit N]           records that could not be taken in
    minsheng connectors list | check KEY                installed connectors; check one configured channel
    minsheng backfill CHANNEL --since DATE              take a channel's history in and cluster it (resumable)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import uvicorn
from pydantic import ValidationError

from connectors import ConfigError
from gateway import connectors_cli
from gateway.channels import load_channels
from gateway.runtime import tune_gc
from gateway.settings import Settings

__all__ = ["main"]

# How long SIGTERM waits for open requests before closing them (load balancers drain well before).
SHUTDOWN_GRACE_SECONDS = 10
# How long `minsheng up` waits for REDIS_URL to answer before it gives up, without binding a port.
REDIS_CHECK_SECONDS = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minsheng",
                                     description="民声: one GraphQL graph over every appeal channel")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the gateway")
    up.add_argument("--host", help="interface to listen on (default: $MINSHENG_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default: $PORT or 8000)")
    sandbox = commands.add_parser("sandbox", help="serve the sandbox channel systems, each under /<key>/")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, required=True)
    sandbox.add_argument("--seed", type=int, default=7)
    sandbox.add_argument("--now", metavar="ISO",
                         help="generate the world at this instant, not the current time (a repeatable world)")
    sandbox.add_argument("--webhook", action="append", default=[], metavar="KEY=URL",
                         help="where a pushing channel sends its webhooks (repeatable)")
    quarantine = commands.add_parser("quarantine", help="list records that could not be taken in")
    quarantine.add_argument("channel", nargs="?", help="only this channel")
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.add_argument("--json", action="store_true", help="one JSON object per line")
    connectors_cli.add_parser(commands)
    backfill = commands.add_parser("backfill", help="take a channel's history in from a date (resumable)")
    backfill.add_argument("channel")
    backfill.add_argument("--since", required=True, type=_date, help="YYYY-MM-DD (UTC) or an ISO-8601 time")
    backfill.add_argument("--restart", action="store_true", help="forget the saved backfill cursor first")
    backfill.add_argument("--batch", type=_positive, default=None, metavar="RECORDS",
                          help="records taken in (and the cursor saved) together at least (default 200)")
    return parser


def _date(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _settings(**overrides: Any) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one line per upstream request (every poll of every channel) drowns the log, and the mayor's
    # API key travels in its query string: request lines only at debug level
    if level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _up(args: argparse.Namespace) -> int:
    settings = _settings(host=args.host, port=args.port)
    _configure_logging(settings.log_level)
    problems = _channel_problems(settings)
    if problems:  # fail before binding a port, with every problem listed
        print(f"minsheng: the channels file {settings.channels_file} has problems:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    unreachable = _redis_problem(settings)
    if unreachable:  # fail before binding a port, in one line rather than the lifespan's traceback
        print(f"minsheng: {unreachable}", file=sys.stderr)
        return 1
    from gateway.app import create_app

    tune_gc(settings.gc_young)
    uvicorn.run(functools.partial(create_app, settings), factory=True, host=settings.host, port=settings.port,
                loop="uvloop", http="httptools", log_level=settings.log_level.lower(), proxy_headers=True,
                lifespan="on", access_log=settings.log_level.lower() == "debug",
                # open subscriptions (SSE streams) would otherwise hold a SIGTERM off forever
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    return 0


def _channel_problems(settings: Settings) -> list[str]:
    """Problems of the channels file, then of each connector's view of its entry (no network)."""
    from casework.channels import ChannelSet

    try:
        ChannelSet(load_channels(settings.channels_file, settings.interpolation()))
    except ConfigError as exc:
        return exc.problems
    except ImportError as exc:
        return [f"a connector could not be imported: {exc}"]
    return []


def _redis_problem(settings: Settings) -> str | None:
    """Why the Redis at ``REDIS_URL`` cannot be used (None when it answers, or none is configured)."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_CHECK_SECONDS,
                                  socket_timeout=REDIS_CHECK_SECONDS)
    try:
        client.ping()
    except redis.RedisError as exc:
        return _redis_failed(settings, exc)
    finally:
        client.close()
    return None


def _redis_failed(settings: Settings, exc: Exception) -> str:
    from gateway.embedded import redacted_url

    return f"cannot use the Redis at {redacted_url(settings.redis_url or '')}: {str(exc).rstrip('.')}"


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.app import create_sandbox
    from sandbox.world import parse_instant

    webhooks: dict[str, str] = {}
    for item in args.webhook:
        key, sep, url = item.partition("=")
        if not sep or not key or not url:
            print(f"minsheng: --webhook wants KEY=URL, got {item!r}", file=sys.stderr)
            return 2
        webhooks[key] = url
    try:
        now = parse_instant(args.now) if args.now else None
    except ValueError as exc:
        print(f"minsheng: --now: {exc}", file=sys.stderr)
        return 2
    app = create_sandbox(args.seed, now, webhook_urls=webhooks)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    settings = Settings()
    if not settings.redis_url:
        print("minsheng: REDIS_URL is not set; the embedded store lives inside a running gateway only "
              "(ask it: query { quarantine { channel sourceId reason at } })", file=sys.stderr)
        return 2
    from redis.exceptions import RedisError

    try:
        records = asyncio.run(_list_quarantine(settings, args.channel, args.limit))
    except RedisError as exc:
        print(f"minsheng: {_redis_failed(settings, exc)}", file=sys.stderr)
        return 1
    for record in records:
        if args.json:
            print(json.dumps({"channel": record.channel, "sourceId": record.source_id,
                              "reason": record.reason, "at": record.at.isoformat(), "raw": record.raw},
                             ensure_ascii=False))
        else:
            source_id = record.source_id or "?"
            print(f"{record.at:%Y-%m-%d %H:%M:%S}  {record.channel:<14} {source_id:<28} {record.reason}")
    if not records and not args.json:
        print("quarantine is empty" + (f" for {args.channel}" if args.channel else ""))
    return 0


async def _list_quarantine(settings: Settings, channel: str | None, limit: int) -> list[Any]:
    from casework.reference import Reference
    from casework.store import CaseStore
    from gateway.embedded import redis_client

    redis = redis_client(settings.redis_url)
    try:
        store = CaseStore(redis, Reference.load(), hash_key=settings.hash_key.get_secret_value().encode())
        return list(await store.list_quarantine(channel, limit))
    finally:
        await redis.aclose()


def _backfill(args: argparse.Namespace) -> int:
    settings = Settings()
    if not settings.redis_url:
        print("minsheng: REDIS_URL is not set; a backfill writes into a Redis the gateway also uses",
              file=sys.stderr)
        return 2
    _configure_logging("warning")
    tune_gc(settings.gc_young)
    from redis.exceptions import RedisError

    from casework.backfill import BackfillInterrupted

    try:
        state = asyncio.run(_run_backfill(settings, args.channel, args.since, args.restart, args.batch))
    except KeyError:
        print(f"minsheng: no channel {args.channel!r} in {settings.channels_file}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"minsheng: {problem}", file=sys.stderr)
        return 2
    except BackfillInterrupted as stopped:
        _summary(stopped.progress)
        print(f"minsheng: the backfill of {args.channel} stopped: {stopped}. What was taken in stays, and "
              "the same command resumes after the last batch finished.", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(f"minsheng: {_redis_failed(settings, exc)}. The same command resumes after the last batch "
              "finished.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nminsheng: the backfill of {args.channel} was interrupted; the same command resumes after "
              "the last batch finished.", file=sys.stderr)
        return 130
    _summary(state)
    return 0


def _summary(state: Any) -> None:
    retried = f", {state.retries} retries" if state.retries else ""
    print(f"\n{state.channel}: {state.pages} pages, {state.read} read, {state.taken} taken in and clustered, "
          f"{state.skipped} skipped, {state.quarantined} quarantined{retried}", file=sys.stderr)


def _progress(state: Any) -> None:
    """One redrawn line on stderr: the total is unknown (channels page without counts), so it counts up."""
    bar = "#" * min(30, state.pages % 31)
    sys.stderr.write(f"\r{state.channel} [{bar:<30}] page {state.pages}  read {state.read}  "
                     f"new {state.taken}  skipped {state.skipped}" + ("  (resumed)" if state.resumed else ""))
    sys.stderr.flush()


async def _run_backfill(settings: Settings, channel: str, since: datetime, restart: bool,
                        batch: int | None) -> Any:
    from casework.backfill import backfill
    from casework.channels import ChannelSet
    from casework.clusters import ClusterStore
    from casework.reference import Reference
    from casework.store import CaseStore
    from gateway.embedded import redis_client

    configs = [c for c in load_channels(settings.channels_file, settings.interpolation()) if c.key == channel]
    if not configs:
        raise KeyError(channel)
    redis = redis_client(settings.redis_url)
    try:
        reference = Reference.load()
        store = CaseStore(redis, reference, hash_key=settings.hash_key.get_secret_value().encode())
        clusters = ClusterStore(redis, store, reference)
        async with ChannelSet(configs) as channels:
            return await backfill(channels[channel], store, clusters, since, restart=restart,
                                  batch_records=batch, progress=_progress)
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minsheng`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"up": _up, "sandbox": _sandbox, "quarantine": _quarantine,
                "connectors": connectors_cli.run, "backfill": _backfill}
    try:
        return handlers[args.command](args)
    except ValidationError as exc:  # a setting from the environment (or .env) that does not parse
        for error in exc.errors():
            # the value is left out: it may be a secret
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"minsheng: {where}: {error['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

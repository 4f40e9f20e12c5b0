"""The conformance kit run on every in-repo connector, each against its own sandbox channel.

Each line below is what an integrator writes for their own connector (docs/connectors.md); the
channel-specific protocol tests stay in tests/test_channel_*.py.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import ChannelConfig, Connector, WriteBackKind, registry
from connectors.declarative import sign_body
from connectors.hotline12345 import sign_webhook
from connectors.testing import Upstream, connector_test_class
from gateway.channels import load_channels
from gateway.settings import DEFAULT_CHANNELS_FILE
from sandbox.hotline12345.orders import OrderState, render
from sandbox.world import Ticket, generate_world

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
WORLD = generate_world(7, NOW, incidents=60)
CONFIGS = {c.key: c for c in load_channels(DEFAULT_CHANNELS_FILE, {"MINSHENG_SANDBOX_URL": "http://sandbox"})}
# options that make each channel's pages small, and options each connector must refuse
SMALL = {"hotline12345": {"page_size": 5}, "mayor": {"rows": 5}, "court": {"limit": 5},
         "legalaid": {"first": 5}, "petition": {"page_size": 5}, "open311": {"window_days": 3},
         "shuji": {"page_size": 2}, "juzhang": {"page_size": 2}}
BAD = {"hotline12345": {"page_size": 0, "since": "yesterday"}, "mayor": {"rows": 500},
       "court": {"limit": 0, "since": "yesterday"}, "legalaid": {"first": 0, "since": "yesterday"},
       "petition": {"page_size": 0, "since": "yesterday"}, "open311": {"format": "csv", "window_days": 0},
       "shuji": {"spec": {"list": {"path": 3}, "record": {}}}, "juzhang": {"spec": {"list": {}}}}


def tickets(key: str) -> list[Ticket]:
    return [t for t in WORLD.tickets_for(key) if not t.arrives_after]


def sandbox_app(key: str) -> Callable[[], Any]:
    module = importlib.import_module(f"sandbox.{key}.app")
    return lambda: module.create_app(copy.deepcopy(tickets(key)))


def config(key: str) -> Callable[[str], ChannelConfig]:
    return lambda url: dataclasses.replace(CONFIGS[key], base_url=url)


def bad_config(key: str) -> Callable[[str], ChannelConfig]:
    return lambda url: dataclasses.replace(CONFIGS[key], base_url=url, credentials={}, options=BAD[key])


def hotline_push(now: datetime) -> tuple[Mapping[str, str], bytes]:
    ticket = tickets("hotline12345")[0]
    order = render(ticket, OrderState(zt="2", updated=ticket.updated_at))
    body = json.dumps({"event": "workorder.updated", "data": order}, ensure_ascii=False).encode()
    stamp, nonce = str(int(now.timestamp())), f"kit-{time.monotonic_ns()}"
    secret = CONFIGS["hotline12345"].credentials["webhook_secret"]
    return ({"X-12345-Timestamp": stamp, "X-12345-Nonce": nonce,
             "X-12345-Signature": sign_webhook(secret, stamp, nonce, body)}, body)


def shuji_push(now: datetime) -> tuple[Mapping[str, str], bytes]:
    from sandbox.shuji.app import render as render_item

    body = json.dumps({"event": "item.changed", "data": [render_item(tickets("shuji")[0])]},
                      ensure_ascii=False).encode()
    stamp = str(int(now.timestamp()))
    secret = CONFIGS["shuji"].credentials["webhook_secret"]
    return {"X-Shuji-Timestamp": stamp, "X-Shuji-Signature": sign_body(secret, "{timestamp}.{body}", stamp,
                                                                        body)}, body


def upstream(key: str, **overrides: Any) -> Upstream:
    return Upstream(app=sandbox_app(key), config=config(key), small_pages=SMALL[key],
                    bad_config=bad_config(key),
                    received_at={t.source_id: t.received_at for t in tickets(key)}, **overrides)


def connector(key: str) -> type[Connector]:
    return registry.load(CONFIGS[key].connector)


TestHotline12345 = connector_test_class(connector("hotline12345"),
                                        upstream=upstream("hotline12345", webhook=hotline_push))
TestMayor = connector_test_class(connector("mayor"), upstream=upstream("mayor", bad_config_problems=1))
TestCourt = connector_test_class(connector("court"), upstream=upstream("court"))
TestLegalAid = connector_test_class(connector("legalaid"), upstream=upstream("legalaid"))
TestPetition = connector_test_class(connector("petition"), upstream=upstream("petition"))
TestOpen311 = connector_test_class(connector("open311"), upstream=upstream("open311"))
TestShuji = connector_test_class(connector("shuji"), upstream=upstream("shuji", webhook=shuji_push))
TestJuzhang = connector_test_class(connector("juzhang"),
                                   upstream=upstream("juzhang", write_back=WriteBackKind.SIGN))


def hostile_config(url: str) -> ChannelConfig:
    return ChannelConfig(key="hostile", connector="declarative", name="恶意参考渠道", base_url=url,
                         credentials={"token": "sandbox-hostile-token"},
                         options={"spec_file": str(Path(__file__).parent / "specs" / "hostile.yaml")})


def hostile_app() -> Any:
    from sandbox.hostile import create_app

    return create_app(copy.deepcopy(tickets("hotline12345")))


HOSTILE = Upstream(app=hostile_app, config=hostile_config, small_pages={"page_size": 40}, max_rejected=1,
                   bad_config=lambda url: dataclasses.replace(hostile_config(url), credentials={}),
                   bad_config_problems=1,
                   received_at={t.source_id: t.received_at for t in tickets("hotline12345")})
TestHostileReference = connector_test_class(connector("shuji"), upstream=HOSTILE)

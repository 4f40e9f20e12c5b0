"""The conformance kit on the example connector: the one line an integrator writes."""

from __future__ import annotations

import pytest

from connectors import ChannelConfig, registry
from connectors.testing import Upstream, connector_test_class

pytest.importorskip("minsheng_example", reason="pip install -e examples/minsheng-connector-example")

from minsheng_example import create_app


def config(url: str) -> ChannelConfig:
    return ChannelConfig(key="jianyi", connector="jianyi", name="人民建议征集", base_url=url,
                         credentials={"api_key": "example-key"})


def bad_config(url: str) -> ChannelConfig:
    return ChannelConfig(key="jianyi", connector="jianyi", name="人民建议征集", base_url=url,
                         options={"page_size": 0})


TestJianyi = connector_test_class(registry.load("jianyi"), upstream=Upstream(
    app=create_app, config=config, small_pages={"page_size": 5}, bad_config=bad_config))

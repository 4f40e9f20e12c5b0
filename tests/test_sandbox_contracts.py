"""Every sandbox channel with an OpenAPI contract documents exactly the routes it serves."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

import sandbox

OPENAPI_CHANNELS = sorted(p.parent.name for p in Path(sandbox.__file__).parent.glob("*/openapi.yaml"))


def test_the_new_channels_have_contracts() -> None:
    expected = {"court", "hotline12345", "mayor", "open311", "shuji", "juzhang", "hostile"}
    assert expected <= set(OPENAPI_CHANNELS)


@pytest.mark.parametrize("key", OPENAPI_CHANNELS)
def test_the_contract_documents_every_route(key: str) -> None:
    package = importlib.import_module(f"sandbox.{key}")
    contract_file = Path(package.__file__ or "").parent / "openapi.yaml"
    contract = yaml.safe_load(contract_file.read_text(encoding="utf-8"))
    app: Any = importlib.import_module(f"sandbox.{key}.app").create_app([])  # the kit's wrapper keeps routes
    routes = {route.path for route in app.routes}
    assert contract["openapi"].startswith("3.1")
    assert set(contract["paths"]) == {path for path in routes if not path.startswith("/__sandbox")}

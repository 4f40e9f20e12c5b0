"""The kit's pytest plugin (entry point ``pytest11``): registers the ``conformance`` marker, so
``pytest -m conformance`` runs the standard tests of every connector in a project."""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: the connector conformance kit's standard tests")

"""The connector conformance kit: ``TestMine = connector_test_class(MyConnector, upstream=...)``.

Installed with Minsheng as a pytest plugin (``pytest -m conformance`` selects the kit's tests).
See :mod:`connectors.testing.kit` and ``docs/connectors.md``.
"""

from __future__ import annotations

from connectors.testing.kit import ConformanceTests, Upstream, connector_test_class
from connectors.testing.server import KitTransport, serve_app

__all__ = ["ConformanceTests", "KitTransport", "Upstream", "connector_test_class", "serve_app"]

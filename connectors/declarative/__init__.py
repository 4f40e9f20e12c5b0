"""The declarative connector: wire a JSON REST channel with a YAML spec instead of Python.

See :mod:`connectors.declarative.spec` for the spec and ``docs/connectors.md`` for a walk-through.
"""

from __future__ import annotations

from connectors.declarative.connector import DeclarativeConnector, load_spec, sign_body
from connectors.declarative.source import DeclarativeSource, SourceField
from connectors.declarative.spec import ConnectorSpec, parse_spec

__all__ = ["ConnectorSpec", "DeclarativeConnector", "DeclarativeSource", "SourceField", "load_spec",
           "parse_spec", "sign_body"]

"""Finding connector classes: the ``minsheng.connectors`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from connectors.base import Connector
from connectors.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "available", "load"]

ENTRY_POINT_GROUP = "minsheng.connectors"


def available() -> dict[str, str]:
    """Entry-point name → ``module:Class`` for every installed connector."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(name: str) -> type[Connector]:
    """Load the connector class registered under ``name``.

    Raises:
        ConfigError: no such entry point, or it is not a :class:`Connector` subclass.
    """
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(sorted(available())) or "none installed"
        raise ConfigError([f"unknown connector {name!r} (installed: {known})"])
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError([f"entry point {name!r} does not name a Connector subclass"])
    return cls

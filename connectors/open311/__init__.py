"""The Open311 GeoReport v2 connector: any GeoReport v2 endpoint, JSON or XML, with the
servicerequestupdates extension for write-back where the endpoint offers it."""

from __future__ import annotations

from connectors.open311.connector import Open311Connector
from connectors.open311.records import Open311Source
from connectors.open311.wire import GeoReportError

__all__ = ["GeoReportError", "Open311Connector", "Open311Source"]

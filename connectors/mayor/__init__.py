"""The district-head hotline (区长热线) connector."""

from __future__ import annotations

from connectors.mayor.connector import ApiKeyQuery, MayorConnector, decode_body
from connectors.mayor.records import MayorSource

__all__ = ["ApiKeyQuery", "MayorConnector", "MayorSource", "decode_body"]

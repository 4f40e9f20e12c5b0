"""The court pre-litigation mediation (诉前调解) connector.

``HmacSigner`` and ``canonical_request`` are exported so other clients of the platform sign exactly alike.
"""

from __future__ import annotations

from connectors.court.connector import CourtConnector
from connectors.court.records import CourtSource
from connectors.court.signing import HmacSigner, canonical_request

__all__ = ["CourtConnector", "CourtSource", "HmacSigner", "canonical_request"]

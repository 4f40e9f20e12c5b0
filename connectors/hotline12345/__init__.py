"""The 12345 government hotline (12345热线) connector.

``sign_webhook`` is exported so senders (the sandbox, tests, a relay) sign exactly as verified here.
"""

from __future__ import annotations

from connectors.auth import ClientCredentials
from connectors.hotline12345.connector import Hotline12345Connector
from connectors.hotline12345.records import Hotline12345Source
from connectors.hotline12345.webhook import WebhookVerifier, sign_webhook

__all__ = ["ClientCredentials", "Hotline12345Connector", "Hotline12345Source", "WebhookVerifier",
           "sign_webhook"]

"""The petition system (信访) connector: SOAP 1.1 with WS-Security UsernameToken (PasswordDigest).

``UsernameToken`` is exported so other clients of the service authenticate exactly alike.
"""

from __future__ import annotations

from connectors.petition.connector import PetitionConnector
from connectors.petition.records import PetitionSource
from connectors.petition.wsse import UsernameToken, password_digest

__all__ = ["PetitionConnector", "PetitionSource", "UsernameToken", "password_digest"]

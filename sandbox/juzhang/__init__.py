"""局长信箱 (sandbox stand-in): letters to the heads of district bureaus. Contract: ``openapi.yaml``."""

from __future__ import annotations

from sandbox.juzhang.app import BATCH_LIMIT, CLIENT_ID, CLIENT_SECRET, create_app

__all__ = ["BATCH_LIMIT", "CLIENT_ID", "CLIENT_SECRET", "create_app"]

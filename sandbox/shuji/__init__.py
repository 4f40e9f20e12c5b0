"""书记在线 (sandbox stand-in): QR-code intake at district, street and community level.

Contract: ``openapi.yaml``.
"""

from __future__ import annotations

from sandbox.shuji.app import API_KEY, BATCH_LIMIT, create_app

__all__ = ["API_KEY", "BATCH_LIMIT", "create_app"]

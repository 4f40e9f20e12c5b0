"""An Open311 GeoReport v2 endpoint (sandbox), as the public spec has it, plus servicerequestupdates."""

from __future__ import annotations

from sandbox.open311.app import create_app

__all__ = ["create_app"]

"""The court's pre-litigation mediation platform 诉前调解 (sandbox): REST/JSON with HMAC request signing."""

from __future__ import annotations

from sandbox.court.app import create_app

__all__ = ["create_app"]

"""The 12345 government hotline (sandbox): REST/JSON, OAuth2 client credentials, signed webhooks."""

from __future__ import annotations

from sandbox.hotline12345.app import create_app

__all__ = ["create_app"]

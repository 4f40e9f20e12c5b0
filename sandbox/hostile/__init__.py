"""A deliberately hostile reference channel for the conformance kit. Contract: ``openapi.yaml``."""

from __future__ import annotations

from sandbox.hostile.app import PAGE, TOKEN, create_app

__all__ = ["PAGE", "TOKEN", "create_app"]

"""The district-head hotline 区长热线 (sandbox): an older REST system with GBK bodies and Chinese keys."""

from __future__ import annotations

from sandbox.mayor.app import create_app

__all__ = ["create_app"]

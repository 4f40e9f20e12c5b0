"""The petition system 信访信息系统 (sandbox): SOAP 1.1, WS-Security UsernameToken, Chinese element names."""

from __future__ import annotations

from sandbox.petition.app import create_app

__all__ = ["create_app"]

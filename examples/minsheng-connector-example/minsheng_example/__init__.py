"""人民建议征集 (people's suggestions): an example Minsheng connector, packaged on its own."""

from __future__ import annotations

from minsheng_example.connector import JianyiConnector
from minsheng_example.sandbox import create_app

__all__ = ["JianyiConnector", "create_app"]

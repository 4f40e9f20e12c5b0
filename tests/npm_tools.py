"""The npm side of the suite: the pinned packages of ``tests/npm`` (installed from the npm registry on
first use) and running their scripts with Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

NPM_DIR = Path(__file__).with_name("npm")


def ensure_installed() -> None:
    """``npm ci`` when ``node_modules`` is missing or older than the lock file; fails loudly without Node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for the conformance suites (Node >= 18)")
    marker = NPM_DIR / "node_modules" / ".package-lock.json"
    lock = NPM_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NPM_DIR, check=True,
                   timeout=600)


def run_node(script: str, *args: str, timeout: float = 300) -> Any:
    """Run ``tests/npm/<script>`` and parse the JSON it prints."""
    done = subprocess.run(["node", script, *args], cwd=NPM_DIR, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"node {script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)

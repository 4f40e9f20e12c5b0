"""``python -m sandbox --port N [--seed S]``: the six sandbox channel systems, each under ``/<key>/``."""

from __future__ import annotations

import sys

from sandbox.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

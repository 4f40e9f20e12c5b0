"""Running a snippet of Python in fresh processes, for behaviour that is fixed per process."""

from __future__ import annotations

import os
import subprocess
import sys


def outputs_under_hash_seeds(probe: str, seeds: range = range(8)) -> set[str]:
    """What ``probe`` prints in one process per ``PYTHONHASHSEED`` of ``seeds``: one answer when its
    result does not depend on the order of a set of strings, which that seed changes."""
    return {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in seeds}

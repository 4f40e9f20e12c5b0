"""`make bench`: start the real stack on loopback, run each benchmark, print one JSON object."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from bench import burst, dedup, query, subscriptions
from bench.harness import stack


def main() -> int:
    started = time.time()
    figures: dict[str, object] = {
        "command": "make bench",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    with stack() as running:
        figures["query_50_cases_with_source"] = query.run(running)
        figures["subscriptions"] = subscriptions.run(running)
        figures["dedup_quality"] = dedup.quality(running)
    figures["dedup_scale"] = dedup.scale()
    figures["dedup_bursts"] = burst.run()
    figures["wall_seconds"] = round(time.time() - started, 1)
    json.dump(figures, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

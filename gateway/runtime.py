"""What the commands that run the gateway set for the whole process, once, before they start it.

The garbage collector: CPython looks for reference cycles among the objects created since its last
look every time 700 more are alive than freed, and every tenth and hundredth look goes through older
generations. Clustering a page of cases holds a few thousand small objects at once (signatures,
candidate lists, the page's writes), so at the default the collector ran some 80 young and 8 older
collections per thousand cases and, once the matcher's caches of parsed signatures were full, a full
collection every ~1,500 cases: 144–161 µs a case in ``make bench``'s 100k fill, 12–14 % of its
Python time (``gc.callbacks`` timed). Nearly all of those objects die by reference counting; the
cycles the collector is for are rare. At 10,000 it took 15–17 µs a case, and the process's memory
did not change (VmRSS 682–684 MB either way).
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(young: int) -> tuple[int, ...]:
    """Let ``young`` objects build up before a young collection (0: leave the threshold as it is);
    the older generations keep their thresholds. Returns the thresholds before, to restore them."""
    before = gc.get_threshold()
    if young > 0:
        gc.set_threshold(young, *before[1:])
    return before

"""Time windows over requested_datetime: the Open311 connector's cursor and how windows are cut.

GeoReport v2 has no paging: ``GET /requests`` filters on requested_datetime (``start_date`` and
``end_date``, at most 90 days apart) and answers at most a capped number of requests (1,000 by the
spec's default). So a sync walks half-open windows ``[start, end)`` forward in time; a window whose
answer reaches the cap may have lost requests and is cut in halves, earlier half first, until each
answer is under the cap. The cursor moves after every completed window.

Because the filter is on requested_datetime only, a status change of an older request would never be
seen again; so after the forward walk each pass re-polls a trailing window (the last ``reopen_days``
before where the pass started). Ingest is idempotent, so seeing a request again is harmless.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.open311.records import parse_w3c, w3c

__all__ = ["MAX_SPAN", "MIN_SPAN", "Cursor", "chunks", "halves"]

log = logging.getLogger(__name__)

MAX_SPAN = timedelta(days=90)   # the spec's longest start_date..end_date span
MIN_SPAN = timedelta(seconds=1)  # W3C times carry whole seconds: a window cannot be cut finer


@dataclass
class Cursor:
    """``until``: every request with requested_datetime before it has been delivered (the forward walk).
    ``sweep``: a trailing re-poll under way, ``[from, to)``."""

    until: datetime | None = None
    sweep: tuple[datetime, datetime] | None = None

    @classmethod
    def load(cls, cursor: str | None) -> Cursor:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            until = None if data.get("until") is None else parse_w3c(data["until"])
            sweep = data.get("sweep")
            window = None if sweep is None else (parse_w3c(sweep[0]), parse_w3c(sweep[1]))
            return cls(until, window)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            log.warning("open311: unreadable cursor %r; syncing from the start (ingest is idempotent)",
                        cursor[:200])
            return cls()

    def dump(self) -> str:
        sweep = None if self.sweep is None else [w3c(self.sweep[0]), w3c(self.sweep[1])]
        return json.dumps({"until": None if self.until is None else w3c(self.until), "sweep": sweep},
                          separators=(",", ":"))


def chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of at most ``size``."""
    windows, low = [], start
    while low < end:
        high = min(low + size, end)
        windows.append((low, high))
        low = high
    return windows


def halves(start: datetime, end: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """``[start, end)`` cut in two at a whole second."""
    middle = start + timedelta(seconds=max(1, int((end - start).total_seconds()) // 2))
    return (start, middle), (middle, end)

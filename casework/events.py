"""The event log: the one Redis Stream every change of state is appended to.

Writers append *inside* the ``MULTI`` that makes the change, so an event exists exactly when its
change does::

    pipe.multi()
    ...                                                   # the change itself
    events.append_in(pipe, ASSIGNMENT_SIGNED, event_fields(
        cases=[case_key], cluster=cluster_id, departments=[department_id],
        regions=[region_id], channels=[channel], assignment=assignment_id, status="SIGNED"))
    await pipe.execute()

**Vocabulary.** One type per kind of change (:data:`EVENT_TYPES`); add new types here, never
ad hoc strings elsewhere. **Fields.** Every entry is flat string fields: ``type`` plus the payload.
The fields subscriptions filter on and check rights against are the same for every type, built by
:func:`event_fields` (JSON lists for multi-valued ones, so ids may contain any character):

==================  =================================================================================
field               meaning
==================  =================================================================================
``at``              when the change happened (ISO-8601, UTC)
``case``            the case key (``<channel>:<source id>``) the event is about, when it is about one
``cases``           every case key concerned (JSON list; a cluster's member cases)
``cluster``         the cluster id, when a cluster is concerned
``departments``     departments the case/cluster is assigned or summoned (吹哨) to (JSON list)
``regions``         the most specific region ids of the cases concerned (JSON list; readers expand
                    ancestors, so a street's subscriber sees events of its communities)
``channels``        channel keys of the cases concerned (JSON list)
``parties``         keyed identity hashes of the appellants (JSON list; a resident's own appeals)
``respondents``     departments a petition complains about (JSON list; they never see it)
``actor``           the subject of the viewer who made the change, when a person did
==================  =================================================================================

Anything else is the type's own detail (``status``, ``assignment``, ``whistle``, ``card`` …) and
travels to subscribers as-is. Older case events also carry ``channel``, ``source_id``,
``region_id`` and ``category_id``; :class:`Event` reads both shapes.

**Reading.** An entry's stream id is its *cursor*. :meth:`EventLog.read_after` pages through the
log after a cursor and raises :class:`CursorExpired` when entries after it were already trimmed
(retention, :meth:`EventLog.trim`). The one live reader per process is :mod:`casework.eventfeed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio.client import Pipeline

from casework import keys

__all__ = [
    "ALIASES", "ASSIGNMENT_DISPATCHED", "ASSIGNMENT_PROGRESSED", "ASSIGNMENT_RESOLVED",
    "ASSIGNMENT_RETURNED", "ASSIGNMENT_SIGNED", "CARD_ISSUED", "CASE_CREATED", "CASE_UPDATED",
    "CLUSTER_CREATED", "CLUSTER_ESCALATED", "CLUSTER_MERGED", "CLUSTER_SPLIT", "CLUSTER_UPDATED",
    "EVALUATION_ADDED", "EVENT_TYPES", "WHISTLE_ISSUED", "WHISTLE_REPORTED", "WRITEBACK_DELIVERED",
    "WRITEBACK_FAILED",
    "BadCursor", "CursorExpired", "Event", "EventLog", "compare_ids", "event_fields", "is_cursor",
]

CASE_CREATED = "case.created"                    # a source ticket became a case
CASE_UPDATED = "case.updated"                    # its content or status changed in its channel
CLUSTER_CREATED = "cluster.created"              # a new 民声云 dispatch unit
CLUSTER_UPDATED = "cluster.updated"              # a case joined, or the cluster's status changed
CLUSTER_MERGED = "cluster.merged"                # clusters merged (by dedup or by hand)
CLUSTER_SPLIT = "cluster.split"                  # a case split off into a cluster of its own
CLUSTER_ESCALATED = "cluster.escalated"          # raised to a higher tier
ASSIGNMENT_DISPATCHED = "assignment.dispatched"  # sent to a department (派单)
ASSIGNMENT_SIGNED = "assignment.signed"          # the department signed for it (签收)
ASSIGNMENT_PROGRESSED = "assignment.progressed"  # progress recorded
ASSIGNMENT_RETURNED = "assignment.returned"      # the department says it is not theirs (退单)
ASSIGNMENT_RESOLVED = "assignment.resolved"      # handled (办结)
WHISTLE_ISSUED = "whistle.issued"                # a community summons departments (吹哨)
WHISTLE_REPORTED = "whistle.reported"            # a summoned department reported (报到)
CARD_ISSUED = "card.issued"                      # a yellow/red card for an overdue assignment
EVALUATION_ADDED = "evaluation.added"            # a resident rated the outcome
WRITEBACK_DELIVERED = "writeback.delivered"      # a change reached the source channel
WRITEBACK_FAILED = "writeback.failed"            # … and gave up after its retries

EVENT_TYPES = frozenset({
    CASE_CREATED, CASE_UPDATED, CLUSTER_CREATED, CLUSTER_UPDATED, CLUSTER_MERGED, CLUSTER_SPLIT,
    CLUSTER_ESCALATED, ASSIGNMENT_DISPATCHED, ASSIGNMENT_SIGNED, ASSIGNMENT_PROGRESSED,
    ASSIGNMENT_RETURNED, ASSIGNMENT_RESOLVED, WHISTLE_ISSUED, WHISTLE_REPORTED, CARD_ISSUED,
    EVALUATION_ADDED, WRITEBACK_DELIVERED, WRITEBACK_FAILED})

# Type names written before this vocabulary existed (the first cluster store); accepted on append and
# read as the canonical type, so every reader sees one word per kind of change.
ALIASES = {"case.clustered": CLUSTER_UPDATED, "cluster.status": CLUSTER_UPDATED,
           "cluster.dispatch": CLUSTER_UPDATED}

_LISTS = ("cases", "departments", "regions", "channels", "parties", "respondents")
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")
DEFAULT_MAXLEN = 1_000_000
Ancestors = Callable[[str], Iterable[str]]
"""A region id → that region's id and every ancestor's (``Reference.region_ancestors``' ids)."""
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600


class BadCursor(ValueError):
    """Raised when a cursor is not one this log ever handed out (malformed, or from the future)."""


class CursorExpired(LookupError):
    """Raised when events after a cursor were already trimmed away: the client must resynchronise.

    ``code`` is the stable GraphQL ``extensions.code`` transports report it with.
    """

    code = "CURSOR_EXPIRED"

    def __init__(self, cursor: str, trimmed_through: str) -> None:
        super().__init__(f"events after cursor {cursor} are no longer kept (trimmed through "
                         f"{trimmed_through}); re-read the current state, then subscribe without `after`")
        self.cursor = cursor
        self.trimmed_through = trimmed_through


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _split(cursor: str) -> tuple[int, int]:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def is_cursor(value: str) -> bool:
    return bool(_CURSOR.match(value))


def compare_ids(a: str, b: str) -> int:
    """-1, 0 or 1 as stream id ``a`` is before, equal to or after ``b``."""
    left, right = _split(a), _split(b)
    return (left > right) - (left < right)


_JSON_LIST = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(…, ensure_ascii=False)``, without building a new encoder for every call (an event has up
to six lists, and a case makes two events: one stored, one clustered)."""


def event_fields(*, cases: Iterable[str] = (), cluster: str | None = None,
                 departments: Iterable[str] = (), regions: Iterable[str | None] = (),
                 channels: Iterable[str] = (), parties: Iterable[str] = (), respondents: Iterable[str] = (),
                 actor: str | None = None, at: datetime | None = None,
                 **detail: str | None) -> dict[str, str]:
    """The payload of one event: the common fields every reader filters on, plus ``detail``.

    The first of ``cases`` is also written as ``case``. Lists are de-duplicated, order kept.
    """
    listed = {"cases": cases, "departments": departments, "regions": regions, "channels": channels,
              "parties": parties, "respondents": respondents}
    fields: dict[str, str] = {"at": (at or datetime.now(UTC)).isoformat()}
    unique = {name: list(dict.fromkeys(v for v in values if v)) for name, values in listed.items()}
    fields.update((name, _JSON_LIST(values)) for name, values in unique.items() if values)
    if unique["cases"]:
        fields["case"] = unique["cases"][0]
    if cluster:
        fields["cluster"] = cluster
    if actor:
        fields["actor"] = actor
    fields.update({name: str(value) for name, value in detail.items() if value is not None})
    return fields


def _list(fields: Mapping[str, str], name: str, legacy: str | None = None) -> tuple[str, ...]:
    raw = fields.get(name)
    if raw:
        try:
            values = json.loads(raw)
        except ValueError:
            values = raw.split()
        return tuple(str(v) for v in values) if isinstance(values, list) else (str(values),)
    single = fields.get(legacy or "") if legacy else None
    return (single,) if single else ()


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the log, parsed once and shared by every reader of it."""

    id: str
    type: str
    fields: Mapping[str, str] = field(compare=False)
    cases: tuple[str, ...] = ()
    cluster: str | None = None
    departments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    respondents: tuple[str, ...] = ()
    within: frozenset[str] = frozenset()  # ``regions`` and all their ancestors (when the reader knows them)
    # Views of this event derived once per process and shared by every subscriber it reaches (the
    # graph's CaseEvent object, …): the feed parses an entry once, so they are computed once too.
    views: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def cursor(self) -> str:
        return self.id

    @property
    def at(self) -> str:
        return self.fields.get("at", "")

    @classmethod
    def parse(cls, entry_id: Any, raw: Mapping[Any, Any], ancestors: Ancestors | None = None) -> Event:
        """One raw stream entry; ``ancestors`` expands each region to itself and everything above it."""
        fields = {_text(k): _text(v) for k, v in raw.items()}
        regions = _list(fields, "regions", "region_id")
        within = frozenset(a for r in regions for a in ancestors(r)) if ancestors else frozenset(regions)
        kind = fields.get("type", "")
        return cls(id=_text(entry_id), type=ALIASES.get(kind, kind), fields=fields, regions=regions,
                   within=within,
                   cases=_list(fields, "cases", "case"), cluster=fields.get("cluster") or None,
                   departments=_list(fields, "departments", "department_id"),
                   channels=_list(fields, "channels", "channel"),
                   parties=_list(fields, "parties"), respondents=_list(fields, "respondents"))

    def detail(self) -> dict[str, str]:
        """The type's own fields (everything but ``type`` and the common ones)."""
        common = {"type", "at", "case", "cluster", "actor", *_LISTS}
        return {k: v for k, v in self.fields.items() if k not in common}


# Trims the stream to the retention window and records the newest id it removed, atomically, so a
# reader can tell exactly whether entries after its cursor are gone (XADD's own MAXLEN/MINID cannot).
_TRIM = """
local stream, mark = KEYS[1], KEYS[2]
local cut = ARGV[1]
local maxlen = tonumber(ARGV[2])
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local len = redis.call('XLEN', stream)
if maxlen > 0 and len > maxlen then
  local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', len - maxlen + 1)
  local keep = head[#head][1]
  if before(cut, keep) then cut = keep end
end
if cut == '0-0' then return 0 end
local gone = redis.call('XREVRANGE', stream, '(' .. cut, '-', 'COUNT', 1)
if #gone == 0 then return 0 end
local removed = redis.call('XTRIM', stream, 'MINID', cut)
local old = redis.call('GET', mark)
if (not old) or before(old, gone[1][1]) then redis.call('SET', mark, gone[1][1]) end
return removed
"""


class EventLog:
    """Appends to and reads the ``ms:events`` stream.

    Args:
        redis: the gateway's Redis client (``redis.asyncio.Redis`` or the embedded twin).
        maxlen: retention by count: :meth:`trim` keeps at most this many entries.
        retention_seconds: retention by age: :meth:`trim` drops entries older than this.
        ancestors: expands an event's regions when it is read (so region filters include beneath).
    """

    def __init__(self, redis: Any, *, maxlen: int = DEFAULT_MAXLEN,
                 retention_seconds: float = DEFAULT_RETENTION_SECONDS,
                 ancestors: Ancestors | None = None) -> None:
        self.redis = redis
        self.ancestors = ancestors
        self.maxlen = maxlen
        self.retention_seconds = retention_seconds
        self.stream = keys.EVENTS
        self.trimmed_key = keys.EVENTS_TRIMMED

    # -- writing -------------------------------------------------------------------------------

    def append_in(self, pipe: Pipeline, type: str, payload: Mapping[str, str]) -> None:
        """Queue one entry on ``pipe`` — call it between ``pipe.multi()`` and ``execute()``.

        ``payload`` is best built with :func:`event_fields`. Trimming is :meth:`trim`'s job, not
        XADD's, so that an expired cursor is told apart from one that merely saw no news.
        """
        if type not in EVENT_TYPES and type not in ALIASES:
            raise ValueError(f"unknown event type {type!r}: add it to casework.events first")
        fields: dict[Any, Any] = {"type": type}
        fields.update({name: value for name, value in payload.items() if name != "type"})
        pipe.xadd(self.stream, fields)

    async def append(self, type: str, payload: Mapping[str, str]) -> str:
        """Append one entry on its own (for changes that touch nothing else); returns its id."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.append_in(pipe, type, payload)
            [entry_id] = await pipe.execute()
        return _text(entry_id)

    async def trim(self, now: datetime | None = None) -> int:
        """Drop entries beyond the retention (age and count); returns how many went."""
        now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
        cut_ms = max(0, now_ms - int(self.retention_seconds * 1000))
        removed = await self.redis.eval(_TRIM, 2, self.stream, self.trimmed_key, f"{cut_ms}-0", self.maxlen)
        return int(removed or 0)

    # -- reading -------------------------------------------------------------------------------

    async def read(self, after: str = "0-0", count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` raw entries with ids after ``after``, oldest first (no blocking)."""
        answer = await self.redis.xread({self.stream: after}, count=count)
        entries: list[tuple[str, dict[str, str]]] = []
        for _stream, items in answer or []:
            for entry_id, fields in items:
                entries.append((_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
        return entries

    async def read_after(self, cursor: str, count: int = 500) -> list[Event]:
        """Up to ``count`` events after ``cursor``, oldest first.

        Raises:
            BadCursor: ``cursor`` is malformed or newer than the newest entry.
            CursorExpired: entries after ``cursor`` were trimmed; reading on would leave a gap.
        """
        if not is_cursor(cursor):
            raise BadCursor(f"{cursor!r} is not an event cursor (like 1732350000000-0)")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self.trimmed_key)
            pipe.xrange(self.stream, min=f"({cursor}", count=count)
            trimmed, items = await pipe.execute()
        trimmed = _text(trimmed) if trimmed is not None else "0-0"
        if compare_ids(cursor, trimmed) < 0:
            raise CursorExpired(cursor, trimmed)
        if not items and compare_ids(cursor, max(await self.last_id(), trimmed, key=_split)) > 0:
            raise BadCursor(f"cursor {cursor} is ahead of the log: it was not handed out here")
        return [self.parse(entry_id, fields) for entry_id, fields in items]

    def parse(self, entry_id: Any, fields: Mapping[Any, Any]) -> Event:
        return Event.parse(entry_id, fields, self.ancestors)

    async def last_id(self) -> str:
        """The id of the newest entry, ``0-0`` when the stream is empty."""
        newest = await self.redis.xrevrange(self.stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def length(self) -> int:
        return int(await self.redis.xlen(self.stream))

"""The case store: cases, their indexes, cursors, the quarantine and the source cache, in Redis.

Every key name comes from :mod:`casework.keys`. A case is one hash holding the stored case as
JSON (personal data included: masking happens above, per viewer), the digest of what it was
built from, and the index memberships it was indexed under. :meth:`CaseStore.ingest` compares
digests under ``WATCH``: an identical record changes nothing and appends no event; a new or
changed one rewrites the hash, moves exactly the memberships that differ, drops the cached source
record and appends one event, all in one ``MULTI``/``EXEC``. :meth:`CaseStore.ingest_many` does the
same for a whole page of a channel's changes in one ``WATCH``, one read and one ``MULTI``. The
store never scans the keyspace.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import WatchError

from auth.identity import IdentityHasher
from auth.rights import is_respondent_role
from casework import keys
from casework.access import respondent_departments
from casework.events import CASE_CREATED, CASE_UPDATED, EventLog, event_fields
from casework.indexsets import Move, move_many
from casework.model import CasePage, CaseQuery, IngestOutcome, QuarantinedRecord, StoredCase, case_key
from casework.reference import Reference
from casework.search import build, decode_cursor, encode_cursor, plan, read_page
from casework.text import index_terms
from connectors import BadRecord, CaseRecord, Party, UnifiedStatus, utc_now

__all__ = ["DEFAULT_HASH_KEY", "CaseStore", "Ingested", "identity_digests"]

log = logging.getLogger(__name__)

DEFAULT_HASH_KEY = b"minsheng-development-hash-key"
MAX_QUARANTINE_RAW = 4096
QUARANTINE_CAP = 1000
QUERY_CACHE_SECONDS = 10
MAX_WATCH_RETRIES = 100
Ingested = tuple[IngestOutcome, StoredCase | None]
"""A record's outcome and, when it was written, the stored case as written."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def identity_digests(hash_key: bytes, phone: str | None, id_number: str | None) -> list[str]:
    """Keyed hashes of a phone number and an ID number, exactly as :class:`auth.identity.IdentityHasher`
    makes them for a logged-in resident (HMAC-SHA256 of the normalised value; plain values never stored)."""
    return sorted(IdentityHasher(hash_key).hashes(phone=phone, id_number=id_number))


@dataclass(frozen=True, slots=True)
class _Memberships:
    """The index keys a case belongs to; text grams kept apart so they store compactly."""

    sets: frozenset[str]
    bigrams: frozenset[str]
    chars: frozenset[str]

    def all_keys(self) -> set[str]:
        return {*self.sets, *(keys.text_bigram_index(g) for g in self.bigrams),
                *(keys.title_char_index(c) for c in self.chars)}

    def dump(self) -> str:
        return json.dumps({"sets": sorted(self.sets), "t2": "".join(sorted(self.bigrams)),
                           "t1": "".join(sorted(self.chars))}, ensure_ascii=False)

    @classmethod
    def load(cls, raw: str | None) -> _Memberships:
        if not raw:
            return cls(frozenset(), frozenset(), frozenset())
        data = json.loads(raw)
        grams = data.get("t2", "")
        pairs = frozenset(grams[i:i + 2] for i in range(0, len(grams), 2))
        return cls(frozenset(data.get("sets", ())), pairs, frozenset(data.get("t1", "")))


@dataclass(frozen=True, slots=True)
class _Derived:
    region_id: str | None
    category_id: str | None
    memberships: _Memberships
    party_hashes: tuple[str, ...] = ()


class CaseStore:
    """Cases and their indexes in Redis.

    Args:
        redis: ``redis.asyncio.Redis`` (or the embedded twin); either response decoding works.
        reference: resolves places and categories while ingesting.
        events: the event log changes are appended to (one on the same Redis by default).
        hash_key: the secret for keyed hashes of phone and ID numbers (the identity index).
    """

    def __init__(self, redis: Any, reference: Reference, *, events: EventLog | None = None,
                 hash_key: bytes = DEFAULT_HASH_KEY, query_cache_seconds: int = QUERY_CACHE_SECONDS,
                 quarantine_cap: int = QUARANTINE_CAP) -> None:
        self.redis = redis
        self.reference = reference
        self.events = events or EventLog(redis)
        self._hash_key = hash_key
        self._query_ttl = max(1, query_cache_seconds)
        self._quarantine_cap = max(1, quarantine_cap)

    # -- ingest --------------------------------------------------------------------------------

    async def ingest(self, record: CaseRecord) -> IngestOutcome:
        """Store one normalised record; idempotent. CREATED and UPDATED append exactly one event."""
        [outcome] = await self.ingest_many([record])
        return outcome

    async def ingest_many(self, records: Sequence[CaseRecord]) -> list[IngestOutcome]:
        """Store a page of records as :meth:`ingest` stores each, in three round trips for the page
        (a page holding one source id twice is written in parts, so the later record meets the earlier)."""
        return [outcome for outcome, _ in await self.ingest_cases(records)]

    async def ingest_cases(self, records: Sequence[CaseRecord]) -> list[Ingested]:
        """:meth:`ingest_many`, with each stored case as written (None where unchanged): the clustering
        that follows intake takes it from here instead of reading and decoding it again."""
        ingested: list[Ingested] = []
        start = 0
        for end in _unique_runs([case_key(r.channel, r.source_id) for r in records]):
            ingested += await self._ingest_unique(records[start:end])
            start = end
        return ingested

    async def _ingest_unique(self, records: Sequence[CaseRecord]) -> list[Ingested]:
        """Compare digests under ``WATCH`` and write what changed in one ``MULTI`` (keys all distinct)."""
        pending = [_Pending.of(record, self.reference.fingerprint) for record in records]
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_WATCH_RETRIES):
                try:
                    await pipe.watch(*(keys.case(p.key) for p in pending))
                    # read on another connection: the WATCH guards the EXEC, and a page is one round trip
                    async with self.redis.pipeline(transaction=False) as reader:
                        for p in pending:
                            reader.hmget(keys.case(p.key), "digest", "ix", "ingested_at")
                        olds = await reader.execute()
                    return await self._write_changed(pipe, pending, olds)
                except WatchError:
                    continue  # another writer changed a case between our read and EXEC: read again
        raise RuntimeError(f"cases {pending[0].key!r}… kept changing under us; gave up after "
                           f"{MAX_WATCH_RETRIES} tries")

    async def _write_changed(self, pipe: Any, pending: Sequence[_Pending],
                             olds: Sequence[Sequence[Any]]) -> list[Ingested]:
        outcomes = [IngestOutcome.UNCHANGED] * len(pending)  # the common case of every poll
        stored: list[StoredCase | None] = [None] * len(pending)
        written: list[StoredCase] = []
        moves: list[Move] = []   # the page's index memberships, moved in one command
        for index, (p, (old_digest, old_ix, old_ingested)) in enumerate(zip(pending, olds, strict=True)):
            if _text(old_digest) == p.digest:
                continue
            derived = p.derived = p.derived or self._derive(p.record)
            created = old_digest is None
            ingested_at = utc_now() if created else _parse_time(_text(old_ingested))
            case = _stored(p.key, p.record, derived.region_id, derived.category_id, ingested_at)
            if not written:
                pipe.multi()
            moves.append(self._write(pipe, case, p.digest, _Memberships.load(_text(old_ix)),
                                     derived.memberships))
            self.events.append_in(pipe, CASE_CREATED if created else CASE_UPDATED,
                                  _event_payload(case, p.digest, derived.party_hashes))
            outcomes[index] = IngestOutcome.CREATED if created else IngestOutcome.UPDATED
            stored[index] = case
            written.append(case)
        if not written:
            await pipe.reset()
            return list(zip(outcomes, stored, strict=True))
        created_keys = [p.key for p, o in zip(pending, outcomes, strict=True) if o is IngestOutcome.CREATED]
        move_many(pipe, moves)
        _write_page(pipe, written, created_keys)
        await pipe.execute()
        return list(zip(outcomes, stored, strict=True))

    def _derive(self, record: CaseRecord) -> _Derived:
        """Region, category and index memberships of a record (CPU only: done once per ingest)."""
        region_id = self.reference.resolve_place(record.place)
        category_id = self.reference.classify(record.category_hint, record.title, record.content)
        sets = {keys.channel_index(record.channel), keys.status_index(record.status.value)}
        if region_id is not None:
            sets.update(keys.region_index(r.id) for r in self.reference.region_ancestors(region_id))
        if category_id is not None:
            sets.update(keys.category_index(c.id) for c in self.reference.category_ancestors(category_id))
        parties = self._appellant_digests(record.parties)
        sets.update(keys.identity_index(d) for d in parties)
        sets.update(keys.petition_against_index(d)
                    for d in respondent_departments(self.reference, record.channel, record.parties))
        grams, chars = index_terms(record.title, record.content)
        memberships = _Memberships(frozenset(sets), frozenset(grams), frozenset(chars))
        return _Derived(region_id, category_id, memberships, tuple(parties))

    def appellant_hashes(self, case: StoredCase) -> list[str]:
        """Keyed hashes of the phone and ID numbers of the case's own residents (not the other side)."""
        return sorted(set(self._appellant_digests(case.parties)))

    def _appellant_digests(self, parties: Iterable[Party]) -> list[str]:
        return [digest for party in parties if not is_respondent_role(party.role)
                for digest in identity_digests(self._hash_key, party.phone, party.id_number)]

    def _write(self, pipe: Any, case: StoredCase, digest: str, old: _Memberships, new: _Memberships) -> Move:
        """Queue the case's record; returns the move of its index memberships, for the page to queue."""
        old_keys, new_keys = old.all_keys(), new.all_keys()
        pipe.hset(keys.case(case.key), mapping={
            "doc": _encode(case), "digest": digest, "ix": new.dump(),
            "ingested_at": case.ingested_at.isoformat()})
        pipe.delete(keys.source_cache(case.channel, case.source_id))
        return Move(case.key, add=new_keys - old_keys, remove=old_keys - new_keys)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, key: str) -> StoredCase | None:
        [case] = await self.get_many([key])
        return case

    async def get_many(self, keys_: Sequence[str]) -> list[StoredCase | None]:
        """The cases of ``keys_`` in order (``None`` where unknown), in one pipelined round trip."""
        if not keys_:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys_:
                pipe.hget(keys.case(key), "doc")
            docs = await pipe.execute()
        return [_decode(key, _text(doc)) for key, doc in zip(keys_, docs, strict=True)]

    async def search(self, query: CaseQuery, *, first: int, after: str | None) -> CasePage:
        """One page of cases matching ``query``, newest first (see :mod:`casework.search`).

        Raises:
            ValueError: ``after`` is not a cursor this store issued, or ``first`` is negative.
        """
        if first < 0:
            raise ValueError("first must not be negative")
        position = decode_cursor(after) if after else None
        search = plan(query)
        source = keys.ALL_CASES
        if not search.unfiltered:
            generation = int(_text(await self.redis.get(keys.GENERATION)) or 0)
            fingerprint = search.fingerprint(generation)
            source = keys.query_result(fingerprint)
            if not await self.redis.expire(source, self._query_ttl):  # a hit also keeps it for the next page
                source = await build(self.redis, search, fingerprint, self._query_ttl)
        page = await read_page(self.redis, source, search, position, first + 1)
        shown = page.rows[:first]
        cases = [case for case in await self.get_many([key for key, _ in shown]) if case is not None]
        return CasePage(
            cases=tuple(cases), total_count=page.total,
            start_cursor=encode_cursor(shown[0][1], shown[0][0]) if shown else None,
            end_cursor=encode_cursor(shown[-1][1], shown[-1][0]) if shown else None,
            has_next_page=len(page.rows) > first, has_previous_page=position is not None)

    async def count_by_channel(self) -> dict[str, int]:
        """Cases stored per channel key."""
        channels = sorted(c for c in (_text(m) for m in await self.redis.smembers(keys.CHANNELS)) if c)
        if not channels:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.scard(keys.channel_index(channel))
            counts = await pipe.execute()
        return {channel: int(n) for channel, n in zip(channels, counts, strict=True)}

    async def case_keys_for_identity(self, phone: str | None, id_number: str | None) -> list[str]:
        """Keys of cases whose resident has this phone number or ID number (keyed-hash index)."""
        digests = identity_digests(self._hash_key, phone, id_number)
        if not digests:
            return []
        members = await self.redis.sunion([keys.identity_index(d) for d in digests])
        return sorted(k for k in (_text(m) for m in members) if k)

    # -- sync cursors --------------------------------------------------------------------------

    async def load_cursor(self, channel: str) -> str | None:
        return _text(await self.redis.hget(keys.CURSORS, channel))

    async def save_cursor(self, channel: str, cursor: str | None) -> None:
        """Persist the channel's cursor; ``None`` forgets it (the next sync starts from the beginning)."""
        if cursor is None:
            await self.redis.hdel(keys.CURSORS, channel)
        else:
            await self.redis.hset(keys.CURSORS, channel, cursor)

    # -- quarantine ----------------------------------------------------------------------------

    async def quarantine(self, channel: str, bad: BadRecord) -> None:
        """Keep a record that could not be taken in, with its reason; the same record twice counts once."""
        raw = _raw_text(bad.raw)
        seen = hashlib.sha256(json.dumps([bad.source_id, bad.reason, raw], ensure_ascii=False).encode())
        if not await self.redis.hsetnx(keys.quarantine_seen(channel), seen.hexdigest(), "1"):
            return  # a re-read page brings the same bad record again: already kept
        entry = json.dumps({"channel": channel, "source_id": bad.source_id, "reason": bad.reason[:1000],
                            "raw": _truncate(raw, MAX_QUARANTINE_RAW), "at": utc_now().isoformat()},
                           ensure_ascii=False)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.quarantine_list(channel), entry)
            pipe.ltrim(keys.quarantine_list(channel), 0, self._quarantine_cap - 1)
            pipe.incr(keys.quarantine_count(channel))
            pipe.sadd(keys.QUARANTINE_CHANNELS, channel)
            await pipe.execute()

    async def list_quarantine(self, channel: str | None = None, limit: int = 50) -> list[QuarantinedRecord]:
        """Quarantined records, newest first; of one channel or of all."""
        if limit <= 0:
            return []
        if channel is not None:
            channels = [channel]
        else:
            members = await self.redis.smembers(keys.QUARANTINE_CHANNELS)
            channels = sorted(c for c in (_text(m) for m in members) if c)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in channels:
                pipe.lrange(keys.quarantine_list(name), 0, limit - 1)
            lists = await pipe.execute()
        records = [r for entries in lists for r in (_quarantined(_text(e)) for e in entries) if r is not None]
        records.sort(key=lambda r: r.at, reverse=True)
        return records[:limit]

    async def quarantine_count(self, channel: str) -> int:
        """How many distinct records of the channel were quarantined (the list itself is capped)."""
        return int(_text(await self.redis.get(keys.quarantine_count(channel))) or 0)

    # -- the source cache ----------------------------------------------------------------------

    async def cached_sources(self, channel: str,
                             source_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """Cached live records: source id → (record JSON, when it was fetched); misses left out."""
        if not source_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hmget(keys.source_cache(channel, source_id), "json", "at")
            answers = await pipe.execute()
        found: dict[str, tuple[str, datetime]] = {}
        for source_id, (raw, at) in zip(source_ids, answers, strict=True):
            if raw is not None and at is not None:
                found[source_id] = (str(_text(raw)), _parse_time(_text(at)))
        return found

    async def cache_sources(self, channel: str, records: Mapping[str, str], ttl: int = 3600) -> None:
        """Cache live records (source id → record JSON) for ``ttl`` seconds; ingest drops changed ones."""
        if not records:
            return
        now = utc_now().isoformat()
        async with self.redis.pipeline(transaction=False) as pipe:
            for source_id, raw in records.items():
                name = keys.source_cache(channel, source_id)
                pipe.hset(name, mapping={"json": raw, "at": now})
                pipe.expire(name, max(1, int(ttl)))
            await pipe.execute()


@dataclass(slots=True)
class _Pending:
    """A record on its way in: its key and digest; what it resolves to, once worked out (kept across
    ``WATCH`` retries: it depends on the record alone)."""

    record: CaseRecord
    key: str
    digest: str
    derived: _Derived | None = None

    @classmethod
    def of(cls, record: CaseRecord, reference_fingerprint: str) -> _Pending:
        return cls(record, case_key(record.channel, record.source_id), _digest(record, reference_fingerprint))


def _unique_runs(case_keys: Sequence[str]) -> list[int]:
    """Where to cut ``case_keys`` so that no part holds a key twice (the ends of the parts)."""
    ends: list[int] = []
    seen: set[str] = set()
    for index, key in enumerate(case_keys):
        if key in seen:
            ends.append(index)
            seen.clear()
        seen.add(key)
    return [*ends, len(case_keys)] if case_keys else []


def _write_page(pipe: Any, written: Sequence[StoredCase], created: Sequence[str]) -> None:
    """What a page's cases write once for all: the time order, the channels, the change counter."""
    pipe.zadd(keys.ALL_CASES, {case.key: case.received_at.timestamp() for case in written})
    pipe.sadd(keys.CHANNELS, *sorted({case.channel for case in written}))
    if created:  # clustered right after (casework.clusters); kept here until they are
        pipe.sadd(keys.CLUSTER_PENDING, *created)
    pipe.incr(keys.GENERATION)


# -- (de)serialising ---------------------------------------------------------------------------

def _digest(record: CaseRecord, reference_fingerprint: str) -> str:
    """What the stored case was built from: the record and the reference data that resolved it."""
    body = json.dumps([record.model_dump(mode="json"), reference_fingerprint], sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _stored(key: str, record: CaseRecord, region_id: str | None, category_id: str | None,
            ingested_at: datetime) -> StoredCase:
    place = record.place
    return StoredCase(key=key, channel=record.channel, source_id=record.source_id, title=record.title,
                      content=record.content, category_id=category_id, region_id=region_id,
                      address=place.address, lat=place.lat, lng=place.lng, parties=record.parties,
                      status=record.status, source_status=record.source_status,
                      received_at=record.received_at, updated_at=record.updated_at, ingested_at=ingested_at,
                      extra=dict(record.extra))


def _event_payload(case: StoredCase, digest: str, parties: Sequence[str]) -> dict[str, str]:
    # The case's assignments are not known here: assignment.* events carry the departments.
    return event_fields(cases=[case.key], regions=[case.region_id], channels=[case.channel], parties=parties,
                        at=utc_now(), channel=case.channel, source_id=case.source_id,
                        status=case.status.value, region_id=case.region_id or "",
                        category_id=case.category_id or "", digest=digest)


def _encode(case: StoredCase) -> str:
    return json.dumps({
        "channel": case.channel, "source_id": case.source_id, "title": case.title, "content": case.content,
        "category_id": case.category_id, "region_id": case.region_id, "address": case.address,
        "lat": case.lat, "lng": case.lng, "parties": [p.model_dump(mode="json") for p in case.parties],
        "status": case.status.value, "source_status": case.source_status,
        "received_at": case.received_at.isoformat(), "updated_at": case.updated_at.isoformat(),
        "ingested_at": case.ingested_at.isoformat(), "extra": case.extra}, ensure_ascii=False)


def _decode(key: str, raw: str | None) -> StoredCase | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return StoredCase(
            key=key, channel=data["channel"], source_id=data["source_id"], title=data["title"],
            content=data["content"], category_id=data["category_id"], region_id=data["region_id"],
            address=data["address"], lat=data["lat"], lng=data["lng"],
            parties=tuple(Party.model_validate(p) for p in data["parties"]),
            status=UnifiedStatus(data["status"]), source_status=data["source_status"],
            received_at=_parse_time(data["received_at"]),
            updated_at=_parse_time(data["updated_at"]), ingested_at=_parse_time(data["ingested_at"]),
            extra=dict(data.get("extra") or {}))
    except (ValueError, KeyError, TypeError) as exc:
        log.error("case %s is unreadable in the store (%s); treated as missing", key, exc)
        return None


def _parse_time(raw: str | None) -> datetime:
    if not raw:
        return utc_now()
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _raw_text(raw: object) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    try:
        return json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(raw)


def _truncate(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def _quarantined(raw: str | None) -> QuarantinedRecord | None:
    try:
        data = json.loads(raw or "")
        return QuarantinedRecord(channel=data["channel"], source_id=data.get("source_id"),
                                 reason=data["reason"], raw=data.get("raw", ""), at=_parse_time(data["at"]))
    except (ValueError, KeyError, TypeError):
        return None

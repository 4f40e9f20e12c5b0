"""Case search over the store's indexes: set algebra in Redis, newest first, keyset paging.

A query's filters become index sets (a region or category set already holds everything beneath
it, because a case is indexed under every ancestor). Alternatives within one filter (several
channels or statuses) are first unioned; then one ``ZINTERSTORE`` intersects everything with the
received-time sorted set, with weights that keep the score equal to the received time. The result
is kept a few seconds under a name made from the query and the store's change counter, so paging
through a result and repeated dashboard queries reuse it while any change gives a fresh one. The
received-time window is applied when reading (score bounds), so windows share the cached result.

Text: the query is cut like the indexed text (simplified, punctuation dropped) and every bigram of
it must be present — so ``停车场`` finds cases containing 停车 and 车场 (nearly always the phrase
itself; the index cannot see adjacency). A one-character run (``猫``) is looked up in the title
character index: single characters match titles only, since indexing every character of every
content would cost far more than it finds.

Rights: a viewer's :class:`~auth.rights.Scope` becomes one more group (its regions, departments,
identity hashes and the petition channel, any of which admits a case), and the petitions against
the viewer's own unit are taken out of the result with ``ZDIFFSTORE``; so ``totalCount`` and every
page count only what the viewer may see. A scope granting nothing gives an empty result.

Order is received time descending, ties by case key descending (Redis' reverse lexicographic
order); the cursor is that pair, base64-encoded, so pages stay stable while cases arrive.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from auth.rights import PETITION_CHANNELS, Scope
from casework import keys
from casework.model import CaseQuery
from casework.text import bigrams, query_runs

__all__ = ["PageRows", "SearchPlan", "build", "decode_cursor", "encode_cursor", "plan", "read_page",
           "scope_keys", "text_keys"]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What :func:`read_page` reads: a sorted set, and the score window within it."""

    groups: tuple[tuple[str, ...], ...]   # AND of ORs over index keys; () = every case
    case_keys: tuple[str, ...] | None     # restrict to these, when given
    low: float | None                     # received at or after (inclusive)
    high: float | None                    # received before (exclusive)
    exclude: tuple[str, ...] = ()         # index sets whose cases are taken out (petitions against …)

    @property
    def unfiltered(self) -> bool:
        return not self.groups and self.case_keys is None and not self.exclude

    def fingerprint(self, generation: int) -> str:
        body = json.dumps([self.groups, self.case_keys, self.exclude, generation], ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PageRows:
    rows: list[tuple[str, float]]         # (case key, score), newest first, up to the asked size
    total: int


def plan(query: CaseQuery) -> SearchPlan:
    """The index sets and score window a :class:`CaseQuery` stands for."""
    groups: list[tuple[str, ...]] = []
    if query.channels:
        groups.append(tuple(keys.channel_index(c) for c in sorted(set(query.channels))))
    if query.statuses:
        groups.append(tuple(keys.status_index(str(s)) for s in sorted({str(s) for s in query.statuses})))
    if query.region_id is not None:
        groups.append((keys.region_index(query.region_id),))
    if query.category_id is not None:
        groups.append((keys.category_index(query.category_id),))
    groups.extend((key,) for key in text_keys(query.text))
    case_keys = None if query.case_keys is None else tuple(sorted(set(query.case_keys)))
    exclude: tuple[str, ...] = ()
    if query.scope is not None and not query.scope.everything:
        terms = scope_keys(query.scope)
        if terms:
            groups.append(terms)
        else:
            case_keys = ()  # a scope that grants nothing: nothing, not everything
        exclude = tuple(keys.petition_against_index(d) for d in sorted(query.scope.exclude_petitions_against))
    low = None if query.received_after is None else query.received_after.timestamp()
    high = None if query.received_before is None else query.received_before.timestamp()
    return SearchPlan(tuple(groups), case_keys, low, high, exclude)


def scope_keys(scope: Scope) -> tuple[str, ...]:
    """The index sets a case must be in one of to be in ``scope`` (see :meth:`auth.rights.Scope.allows`)."""
    found = {keys.region_index(r) for r in scope.region_ids}
    found.update(keys.department_index(d) for d in scope.department_ids)
    found.update(keys.identity_index(h) for h in scope.identity_hashes)
    if scope.petitions:
        found.update(keys.channel_index(c) for c in PETITION_CHANNELS)
    return tuple(sorted(found))


def text_keys(text: str | None) -> list[str]:
    """The index keys a text filter must all hit (see the module docstring)."""
    found: set[str] = set()
    for run in query_runs(text or ""):
        if len(run) == 1:
            found.add(keys.title_char_index(run))
        else:
            found.update(keys.text_bigram_index(gram) for gram in bigrams(run))
    return sorted(found)


def encode_cursor(score: float, key: str) -> str:
    raw = json.dumps([score, key], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError for anything :func:`encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, key = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor of this connection") from exc
    if not isinstance(score, int | float) or isinstance(score, bool) or not isinstance(key, str):
        raise ValueError("not a cursor of this connection")
    return float(score), key


async def build(redis: Any, search: SearchPlan, fingerprint: str, ttl: int) -> str:
    """Materialise ``search``'s filters into a sorted set (one MULTI); returns its name."""
    name = keys.query_result(fingerprint)
    inputs: dict[str, float] = {keys.ALL_CASES: 1.0}
    scratch: list[str] = []
    async with redis.pipeline(transaction=True) as pipe:
        for index, group in enumerate(search.groups):
            if len(group) == 1:
                inputs[group[0]] = 0.0
                continue
            part = keys.query_part(fingerprint, index)
            pipe.zunionstore(part, list(group))
            scratch.append(part)
            inputs[part] = 0.0
        if search.case_keys is not None:
            part = keys.query_part(fingerprint, len(search.groups))
            pipe.delete(part)
            if search.case_keys:
                pipe.sadd(part, *search.case_keys)
            scratch.append(part)
            inputs[part] = 0.0
        pipe.zinterstore(name, inputs, aggregate="SUM")
        if search.exclude:
            pipe.zdiffstore(name, [name, *search.exclude])
        pipe.expire(name, ttl)
        if scratch:
            pipe.delete(*scratch)
        await pipe.execute()
    return name


def _bound(value: float | None, *, exclusive: bool, default: str) -> str:
    if value is None:
        return default
    return f"({value!r}" if exclusive else repr(value)


async def read_page(redis: Any, source: str, search: SearchPlan, position: tuple[float, str] | None,
                    size: int) -> PageRows:
    """Up to ``size`` rows of ``source`` after ``position``, and the total in the window (one round trip)."""
    low = _bound(search.low, exclusive=False, default="-inf")
    high = _bound(search.high, exclusive=True, default="+inf")
    ties_score: float | None = None
    upper = high
    if position is not None:
        score, _ = position
        if search.high is None or score < search.high:
            upper = f"({score!r}"
            if search.low is None or score >= search.low:
                ties_score = score
    async with redis.pipeline(transaction=False) as pipe:
        if low == "-inf" and high == "+inf":
            pipe.zcard(source)
        else:
            pipe.zcount(source, low, high)
        if ties_score is not None:
            pipe.zrevrangebyscore(source, repr(ties_score), repr(ties_score), withscores=True)
        if size > 0:
            pipe.zrevrangebyscore(source, upper, low, start=0, num=size, withscores=True)
        answers = await pipe.execute()
    total = int(answers[0])
    rows = _rows(answers[1]) if ties_score is not None else []
    if position is not None:
        after_key = position[1].encode()
        rows = [(key, score) for key, score in rows if key.encode() < after_key]
    if size > 0:
        rows.extend(_rows(answers[-1]))
    return PageRows(rows[:size], total)


def _rows(raw: Sequence[tuple[Any, Any]]) -> list[tuple[str, float]]:
    return [(member.decode() if isinstance(member, bytes) else str(member), float(score))
            for member, score in raw]

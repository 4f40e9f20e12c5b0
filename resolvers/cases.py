"""Cases: lookups, the filtered connection, live source records, parties and timeline.

Every case leaves here through the rights of :mod:`resolvers.rights`: :func:`get_case` answers
``None`` for a case the viewer may not see, :func:`search_cases` and :func:`my_cases` query the
store within the viewer's scope.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from auth.masking import PartyView
from auth.rights import is_respondent_role
from casework.model import CasePage, CaseQuery, StoredCase
from casework.search import encode_cursor
from connectors import UnifiedStatus
from resolvers.errors import BadUserInput, UpstreamFailure
from resolvers.masking import party_views, source_reveal
from resolvers.rights import case_facts, own_cases, scoped, visible_case, visible_cases
from resolvers.sources import SourceView

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["TimelineEntry", "case_citizen", "case_parties", "case_source", "case_timeline", "edge_cursors",
           "get_case", "make_case_query", "my_cases", "page_size", "search_cases"]

MAX_TEXT_FILTER = 200


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str
    description: str
    status: UnifiedStatus | None = None


async def get_case(ctx: GraphContext, key: str) -> StoredCase | None:
    """The case stored under ``key``, or ``None`` when there is none or the viewer may not see it."""
    return await visible_case(ctx, await ctx.loaders.cases.load(key))


def page_size(ctx: GraphContext, first: int | None) -> int:
    limits = ctx.resources.limits
    if first is None:
        return limits.default_page_size
    if first < 0 or first > limits.max_page_size:
        raise BadUserInput(f"first must be between 0 and {limits.max_page_size}", argument="first")
    return first


def make_case_query(ctx: GraphContext, *, channels: list[str] | None = None,
                    statuses: list[UnifiedStatus] | None = None, region_id: str | None = None,
                    category_id: str | None = None, text: str | None = None,
                    received_after: datetime | None = None,
                    received_before: datetime | None = None) -> CaseQuery:
    """A store query from filter values whose ids are already decoded; checks they exist."""
    reference = ctx.resources.reference
    if region_id is not None and region_id not in reference.regions:
        raise BadUserInput(f"no region {region_id!r}", argument="filter.regionId")
    if category_id is not None and category_id not in reference.categories:
        raise BadUserInput(f"no category {category_id!r}", argument="filter.categoryId")
    if text is not None and len(text) > MAX_TEXT_FILTER:
        raise BadUserInput(f"text filter longer than {MAX_TEXT_FILTER} characters", argument="filter.text")
    if received_after and received_before and received_after > received_before:
        raise BadUserInput("receivedAfter is later than receivedBefore", argument="filter")
    return CaseQuery(channels=tuple(channels or ()), statuses=tuple(statuses or ()), region_id=region_id,
                     category_id=category_id, text=(text or "").strip() or None,
                     received_after=received_after, received_before=received_before)


async def search_cases(ctx: GraphContext, query: CaseQuery, first: int | None, after: str | None) -> CasePage:
    """One page of the cases the viewer may see (the scope is filtered in the store's indexes)."""
    return await _page(ctx, scoped(ctx, query), first, after)


async def my_cases(ctx: GraphContext, query: CaseQuery, first: int | None, after: str | None) -> CasePage:
    """One page of the viewer's own appeals across every channel, matched by verified identity hashes."""
    return await _page(ctx, own_cases(ctx, query), first, after)


async def _page(ctx: GraphContext, query: CaseQuery, first: int | None, after: str | None) -> CasePage:
    size = page_size(ctx, first)
    try:
        page = await ctx.resources.store.search(query, first=size, after=after)
    except ValueError as exc:  # the store's answer to a cursor it did not issue
        raise BadUserInput(f"invalid cursor: {exc}", argument="after") from None
    for case in page.cases:
        ctx.loaders.cases.prime(case.key, case)
    # The store filtered by scope already; checking each case again costs one pipelined read and
    # keeps a stale index from ever showing what the policy refuses.
    shown = await visible_cases(ctx, page.cases)
    return page if len(shown) == len(page.cases) else replace(page, cases=tuple(shown))


def edge_cursors(ctx: GraphContext, page: CasePage) -> list[str]:
    """Each case's cursor: the store's (received time, key) position, so any edge can resume a page."""
    return [encode_cursor(case.received_at.timestamp(), case.key) for case in page.cases]


async def case_source(ctx: GraphContext, case: StoredCase, *, reveal: bool = False) -> SourceView | None:
    """The live record from the channel system, batched with every other case of the request.

    ``reveal`` asks for its personal fields in clear (granted where the viewer may; audited).
    """
    loader = ctx.loaders.source(case.channel)
    if loader is None:
        raise UpstreamFailure(f"channel {case.channel} is not configured in this deployment",
                              channel=case.channel)
    view = await loader.load(case.source_id)
    # the cached view is shared by key; the case's facts decide how its personal fields show
    if view is None:
        return None
    facts = await case_facts(ctx, case)
    return replace(view, facts=facts, unmask=source_reveal(ctx, case, reveal))


def case_parties(ctx: GraphContext, case: StoredCase, *, reveal: bool = False) -> list[PartyView]:
    return party_views(ctx, case, case.parties, reveal=reveal)


def case_citizen(ctx: GraphContext, case: StoredCase, *, reveal: bool = False) -> PartyView | None:
    """The resident who raised the appeal: the first party that is not the other side."""
    for party in case.parties:
        if not is_respondent_role(party.role):
            return party_views(ctx, case, [party], reveal=reveal, what="citizen")[0]
    return None


async def case_timeline(ctx: GraphContext, case: StoredCase) -> list[TimelineEntry]:
    """What happened to the case, oldest first: received by the channel, taken in, last changed."""
    entries = [
        TimelineEntry(case.received_at, "RECEIVED", f"渠道受理（{case.channel}）", UnifiedStatus.SUBMITTED),
        TimelineEntry(case.ingested_at, "INGESTED", "汇入民声平台"),
    ]
    if case.updated_at > case.received_at:
        entries.append(TimelineEntry(case.updated_at, "STATUS", f"渠道状态：{case.source_status}",
                                     case.status))
    return sorted(entries, key=lambda entry: entry.at)

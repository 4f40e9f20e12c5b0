"""Rights in the graph: the resolvers' side of :mod:`auth.rights`, on every object and edge.

The policy itself (who sees which case, who may do what, who may read personal data in clear)
lives in :mod:`auth.rights`; this module feeds it the facts of stored cases and is what every
resolver calls. The rules for resolver authors:

* a list of cases is a store query restricted with :func:`scoped` (the scope is filtered in the
  indexes, so ``totalCount`` and paging count only what the viewer may see) — ``cases``, text
  search, ``myCases``, and the cluster views, statistics and maps built over case queries;
* one case reached any other way (``node``, ``case``, ``_entities``, a cluster's members, an event
  of a subscription) goes through :func:`visible_case` / :func:`visible_cases` /
  :func:`can_view_case_key`: an invisible case is ``None`` — the viewer must not learn it exists;
* a write runs inside :func:`audited` (one audit entry: ok, denied or failed) and checks
  :func:`require_action` first (``NOT_FOUND`` / ``FORBIDDEN``); :func:`audit_write` is the plain
  call for writes that need their own shape; the acting user for a channel's own audit
  (``WriteBackAction.actor``) is :func:`actor_of` — never the user's token::

      with audited(ctx, "signAssignment", assignment_global_id) as entry:
          await require_action(ctx, Action.SIGN, case)
          ...                                   # the write
          entry.detail = "签收"                  # optional: what to add to the entry


* personal data in clear is read only on an explicit request and logged with :func:`audit_read`
  (:mod:`resolvers.masking` does this for ``reveal: true``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from auth.audit import Outcome
from auth.rights import (
    Action,
    CaseFacts,
    Scope,
    can_act,
    can_view_stats,
    case_scope,
    is_operator,
    is_respondent_role,
)
from auth.viewer import Viewer
from casework.access import respondent_departments
from casework.model import CaseQuery, StoredCase
from resolvers.errors import Forbidden, NotFound, Unauthenticated

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = [
    "AuditNote",
    "actor_of",
    "audit_read",
    "audit_write",
    "audited",
    "can_view_case_key",
    "case_facts",
    "known_facts",
    "own_cases",
    "require_action",
    "require_login",
    "require_operator",
    "require_stats",
    "scoped",
    "viewer_scope",
    "visible_case",
    "visible_cases",
]


def require_login(viewer: Viewer) -> None:
    """Raises :class:`Unauthenticated` for a viewer nobody logged in as (HTTP already refuses them)."""
    if not viewer.authenticated:
        raise Unauthenticated("log in to see this")


def require_operator(viewer: Viewer) -> None:
    """Operators (the district command centre) see the plumbing: quarantine, raw records.

    Raises:
        Unauthenticated: nobody is logged in.
        Forbidden: the viewer is not an operator.
    """
    if not viewer.roles:
        raise Unauthenticated("log in to see this")
    if not is_operator(viewer):
        raise Forbidden("only the district command centre may see this")


def require_stats(ctx: GraphContext) -> Scope:
    """For ``stats``/``riskMap``: the scope to compute over, or ``FORBIDDEN`` (residents, no jurisdiction)."""
    require_login(ctx.viewer)
    if not can_view_stats(ctx.viewer):
        raise Forbidden("statistics are for staff with a jurisdiction")
    return viewer_scope(ctx)


def viewer_scope(ctx: GraphContext) -> Scope:
    """What lists must be restricted to for this request's viewer (worked out once per request)."""
    scope = ctx.loaders.scope
    if scope is None:
        scope = ctx.loaders.scope = case_scope(ctx.viewer)
    return scope


def scoped(ctx: GraphContext, query: CaseQuery) -> CaseQuery:
    """``query`` restricted to what the viewer may see; the store filters it in its indexes."""
    return replace(query, scope=viewer_scope(ctx))


def own_cases(ctx: GraphContext, query: CaseQuery) -> CaseQuery:
    """``query`` restricted to the viewer's own appeals (``myCases``): matched by verified identity hashes.

    A viewer with no verified identity has none; names are never matched.
    """
    return replace(query, scope=Scope(identity_hashes=ctx.viewer.identity_hashes))


def _facts(ctx: GraphContext, case: StoredCase, departments: frozenset[str]) -> CaseFacts:
    reference = ctx.resources.reference
    regions: frozenset[str] = frozenset()
    if case.region_id is not None and case.region_id in reference.regions:
        regions = frozenset(r.id for r in reference.region_ancestors(case.region_id))
    hasher = ctx.resources.hasher
    hashes: set[str] = set()
    if hasher is not None:
        for party in case.parties:
            if not is_respondent_role(party.role):
                hashes |= hasher.hashes(phone=party.phone, id_number=party.id_number)
    return CaseFacts(channel=case.channel, region_ids=regions, department_ids=departments,
                     party_hashes=frozenset(hashes),
                     respondent_department_ids=respondent_departments(reference, case.channel, case.parties))


async def case_facts(ctx: GraphContext, case: StoredCase) -> CaseFacts:
    """What the policy needs to know about ``case``, departments included (batched, memoised per request)."""
    facts = ctx.loaders.facts.get(case.key)
    if facts is None:
        departments = await ctx.loaders.case_departments.load(case.key)
        facts = ctx.loaders.facts[case.key] = _facts(ctx, case, departments)
    return facts


def known_facts(ctx: GraphContext, case: StoredCase) -> CaseFacts:
    """The facts :func:`case_facts` found, for synchronous field resolvers of a case already checked.

    A case not checked yet gets facts without its departments: fewer rights, never more.
    """
    facts = ctx.loaders.facts.get(case.key)
    return facts if facts is not None else _facts(ctx, case, frozenset())


async def visible_case(ctx: GraphContext, case: StoredCase | None) -> StoredCase | None:
    """``case`` when the viewer may know it exists, else ``None``."""
    if case is None:
        return None
    return case if _allows(ctx, await case_facts(ctx, case)) else None


async def visible_cases(ctx: GraphContext, cases: Iterable[StoredCase | None]) -> list[StoredCase]:
    """The cases of ``cases`` the viewer may see, in order (a cluster's members, a batch of events)."""
    shown = []
    for case in cases:
        if await visible_case(ctx, case) is not None:
            assert case is not None
            shown.append(case)
    return shown


async def can_view_case_key(ctx: GraphContext, key: str) -> bool:
    """Whether the viewer may see the case stored under ``key`` (per-event rights of subscriptions)."""
    return await visible_case(ctx, await ctx.loaders.cases.load(key)) is not None


def _allows(ctx: GraphContext, facts: CaseFacts) -> bool:
    return viewer_scope(ctx).allows(facts)


async def require_action(ctx: GraphContext, action: Action, case: StoredCase | None,
                         object_id: str | None = None) -> CaseFacts:
    """Check that the viewer may do ``action`` on ``case``; returns its facts.

    Raises:
        NotFound: no such case, or one the viewer may not see (it must not learn it exists).
        Forbidden: the viewer sees the case but may not do this (:func:`audited` records the refusal).
    """
    require_login(ctx.viewer)
    if await visible_case(ctx, case) is None:
        raise NotFound("no such case")
    assert case is not None
    facts = await case_facts(ctx, case)
    if not can_act(ctx.viewer, action, facts):
        raise Forbidden(f"you may not {action} this case")
    return facts


@dataclass(slots=True)
class AuditNote:
    """What :func:`audited` writes; the block may fill in what it learns (the new object's id …)."""

    object_id: str | None
    fields: tuple[str, ...] = ()
    detail: str | None = None


@contextlib.contextmanager
def audited(ctx: GraphContext, action: str, object_id: str | None = None, *,
            fields: Sequence[str] = ()) -> Iterator[AuditNote]:
    """Write exactly one audit entry for the write in the block: ``ok``, ``denied`` (``FORBIDDEN``,
    ``UNAUTHENTICATED``) or ``failed`` (anything else raised, its class name as the detail)."""
    note = AuditNote(object_id, tuple(fields))
    try:
        yield note
    except (Forbidden, Unauthenticated):
        audit_write(ctx, action, note.object_id, fields=note.fields, outcome=Outcome.DENIED,
                    detail=note.detail)
        raise
    except Exception as exc:
        audit_write(ctx, action, note.object_id, fields=note.fields, outcome=Outcome.FAILED,
                    detail=note.detail or type(exc).__name__)
        raise
    audit_write(ctx, action, note.object_id, fields=note.fields, detail=note.detail)


def _request_meta(ctx: GraphContext) -> tuple[str | None, str | None]:
    request = ctx.request
    if request is None:
        return None, None
    client = getattr(request, "client", None)
    headers = getattr(request, "headers", {})
    return (client.host if client else None), headers.get("x-request-id")


def audit_write(ctx: GraphContext, action: str, object_id: str | None, *, fields: Sequence[str] = (),
                outcome: str = Outcome.OK, detail: str | None = None) -> None:
    """One audit entry for a write (``action`` is the mutation's name), whatever its outcome."""
    audit = ctx.resources.audit
    if audit is None:
        return
    ip, request_id = _request_meta(ctx)
    audit.record(ctx.viewer, action, object_id, fields=tuple(fields), outcome=outcome, ip=ip,
                 request_id=request_id, detail=detail)


def audit_read(ctx: GraphContext, object_id: str, fields: Sequence[str], *, action: str = "unmask",
               outcome: str = Outcome.OK, detail: str | None = None) -> None:
    """One audit entry for personal ``fields`` of ``object_id`` read in clear (or refused)."""
    audit_write(ctx, action, object_id, fields=fields, outcome=outcome, detail=detail)


def actor_of(viewer: Viewer) -> str:
    """The acting user as a channel's own audit records it (``WriteBackAction.actor``)."""
    return viewer.username if viewer.display_name == viewer.username else \
        f"{viewer.display_name}({viewer.username})"

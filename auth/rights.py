"""The rights policy: pure functions over a :class:`~auth.viewer.Viewer` and plain facts of an object.

Resolvers call these on every object and edge (``node``, ``case``, ``cases``, ``dispatchView``,
search, ``stats``, each subscription event), never only at the entry point:

* :func:`case_scope` — what a *list* must be restricted to, as index terms (all / regions /
  departments / identity hashes / petitions, minus petitions against the viewer's own unit), so the
  store filters in its indexes instead of post-filtering a page;
* :func:`can_view_case` — the same rule for *one* case: ``can_view_case(v, f) == case_scope(v).allows(f)``;
* :func:`can_act` (and :func:`can_dispatch`) — writes;
* :func:`disclosure` / :func:`can_unmask` — personal data, field by field.

Who sees what (roles combine: a viewer with two roles sees the union)::

    district        everything; dispatches; may unmask (audited)
    street          cases in its street(s) and beneath; dispatches there; may unmask there (audited)
    community       cases in its community and beneath; whistles; may unmask there (audited)
    department      cases assigned or summoned to it; handles them; may unmask them (audited)
    service         as department, for a department system with scope cases:read (cases:write to
                    act, personal_data:read to unmask)
    petition_staff  petitions, and cases assigned to its unit; the only role that sees a petitioner
    resident        own appeals only (matched by verified identity hash, never by name), masked
    open            development before login: sees and does all, never unmasks

Petitioner confidentiality (信访工作条例 art. 30): in a petition every party's identity is withheld
from everyone but petition staff (and the petitioner's own view, masked); and a unit the petition
complains about never sees that petition at all, whatever else it is assigned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from auth.viewer import Role, Viewer

__all__ = ["PERSONAL_FIELDS", "PETITION_CHANNELS", "RESPONDENT_ROLES", "Action", "CaseFacts", "Disclosure",
           "Scope", "can_act", "can_dispatch", "can_unmask", "can_view_case", "can_view_cluster",
           "can_view_stats", "case_scope", "disclosure", "is_operator", "is_respondent_role"]

PETITION_CHANNELS = frozenset({"petition"})
PERSONAL_FIELDS = frozenset({"name", "phone", "id_number", "address"})
# Party roles that name the other side of an appeal; their identity hashes are not "own appeals".
RESPONDENT_ROLES = frozenset({"被申请人", "被投诉人", "被反映人", "被举报人", "被诉人", "被告", "对方当事人"})
SCOPE_READ, SCOPE_WRITE, SCOPE_PERSONAL = "cases:read", "cases:write", "personal_data:read"


def is_respondent_role(role: str | None) -> bool:
    """Whether a party's role word names the side complained about (被…), not the appellant.

    The same rule as the store's identity index, which leaves respondents out of "own appeals".
    """
    word = (role or "").strip()
    return word in RESPONDENT_ROLES or word.startswith("被")


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the policy needs to know about one case (or a cluster's member case)."""

    channel: str
    region_ids: frozenset[str] = frozenset()        # the case's region *and every ancestor* (district … grid)
    department_ids: frozenset[str] = frozenset()    # departments it is assigned or summoned (吹哨) to
    party_hashes: frozenset[str] = frozenset()      # identity hashes of the appellants (not respondents)
    is_petition: bool = False                       # a petition (信访) even if it came another way
    respondent_department_ids: frozenset[str] = frozenset()  # the unit(s) complained about, when known

    @property
    def petition(self) -> bool:
        return self.is_petition or self.channel in PETITION_CHANNELS


@dataclass(frozen=True, slots=True)
class Scope:
    """The cases a viewer may see, as index terms: a case is in scope when any term matches it.

    ``exclude_petitions_against`` then removes petitions complaining about those departments.
    """

    everything: bool = False
    region_ids: frozenset[str] = frozenset()        # cases with one of these among their region ancestors
    department_ids: frozenset[str] = frozenset()    # cases assigned or summoned to one of these
    identity_hashes: frozenset[str] = frozenset()   # cases raised by one of these identities
    petitions: bool = False                         # every petition
    exclude_petitions_against: frozenset[str] = frozenset()

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.region_ids or self.department_ids or self.identity_hashes
                    or self.petitions)

    def allows(self, facts: CaseFacts) -> bool:
        if self.everything:
            return True
        if facts.petition and facts.respondent_department_ids & self.exclude_petitions_against:
            return False
        return bool(self.region_ids & facts.region_ids or self.department_ids & facts.department_ids
                    or self.identity_hashes & facts.party_hashes or (self.petitions and facts.petition))

    def __or__(self, other: Scope) -> Scope:
        if self.everything or other.everything:
            return Scope(everything=True)
        return Scope(region_ids=self.region_ids | other.region_ids,
                     department_ids=self.department_ids | other.department_ids,
                     identity_hashes=self.identity_hashes | other.identity_hashes,
                     petitions=self.petitions or other.petitions,
                     exclude_petitions_against=(self.exclude_petitions_against
                                                | other.exclude_petitions_against))


def _own_department(viewer: Viewer) -> frozenset[str]:
    return frozenset({viewer.department_id}) if viewer.department_id else frozenset()


def _role_scope(role: Role, viewer: Viewer) -> Scope:
    """The scope one role of ``viewer`` grants on its own."""
    own = _own_department(viewer)
    match role:
        case Role.DISTRICT | Role.OPEN:
            return Scope(everything=True)
        case Role.STREET | Role.COMMUNITY:
            return Scope(region_ids=viewer.region_ids)
        case Role.DEPARTMENT:
            return Scope(department_ids=own, exclude_petitions_against=own)
        case Role.SERVICE if SCOPE_READ in viewer.scopes or SCOPE_WRITE in viewer.scopes:
            return Scope(department_ids=own, exclude_petitions_against=own)
        case Role.PETITION_STAFF:
            return Scope(department_ids=own, petitions=True, exclude_petitions_against=own)
        case Role.RESIDENT:
            return Scope(identity_hashes=viewer.identity_hashes)
    return Scope()


def case_scope(viewer: Viewer) -> Scope:
    """What a list of cases (or clusters, stats, events) must be restricted to for ``viewer``."""
    scope = Scope()
    for role in viewer.roles:
        scope = scope | _role_scope(role, viewer)
    return scope


def can_view_case(viewer: Viewer, facts: CaseFacts) -> bool:
    """Whether ``viewer`` may know this case exists. Resolvers answer null (not FORBIDDEN) when not."""
    return case_scope(viewer).allows(facts)


def can_view_cluster(viewer: Viewer, members: Iterable[CaseFacts]) -> bool:
    """A cluster (民声云 dispatch unit) is visible when one of its cases is; list only those cases."""
    scope = case_scope(viewer)
    return any(scope.allows(facts) for facts in members)


def _granted_by(viewer: Viewer, roles: frozenset[Role], facts: CaseFacts) -> bool:
    """Whether one of ``roles`` held by ``viewer`` covers this case on its own."""
    return any(role in roles and _role_scope(role, viewer).allows(facts) for role in viewer.roles)


def is_operator(viewer: Viewer) -> bool:
    """Operators see the plumbing (quarantine, raw records, channel errors)."""
    return bool(viewer.roles & {Role.DISTRICT, Role.OPEN})


def can_view_stats(viewer: Viewer) -> bool:
    """Statistics are for staff; they are computed over :func:`case_scope` only."""
    return bool(viewer.roles - {Role.RESIDENT}) and not case_scope(viewer).nothing


class Action(StrEnum):
    """Writes on a case or its cluster, one per mutation family."""

    DISPATCH = "dispatch"      # dispatchCluster
    MERGE = "merge"            # mergeClusters, splitCase
    RESOLVE = "resolve"        # resolveCluster
    ESCALATE = "escalate"      # escalateCluster
    WHISTLE = "whistle"        # issueWhistle (社区吹哨)
    REPORT = "report"          # reportToWhistle (部门报到)
    SIGN = "sign"              # signAssignment
    PROGRESS = "progress"      # addProgress
    RETURN = "return"          # returnAssignment (退单)
    EVALUATE = "evaluate"      # evaluateCase (a resident rates the outcome)


_HANDLERS = frozenset({Role.DEPARTMENT, Role.SERVICE})
_ACTORS: dict[Action, frozenset[Role]] = {
    Action.DISPATCH: frozenset({Role.DISTRICT, Role.STREET}),
    Action.MERGE: frozenset({Role.DISTRICT, Role.STREET}),
    Action.RESOLVE: frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY}) | _HANDLERS,
    Action.ESCALATE: frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY}) | _HANDLERS,
    Action.WHISTLE: frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY}),
    Action.REPORT: _HANDLERS,
    Action.SIGN: _HANDLERS,
    Action.PROGRESS: frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY, Role.PETITION_STAFF}) | _HANDLERS,
    Action.RETURN: _HANDLERS,
    Action.EVALUATE: frozenset({Role.RESIDENT}),
}


def can_act(viewer: Viewer, action: Action, facts: CaseFacts) -> bool:
    """Whether ``viewer`` may perform ``action`` on this case (every write is audited by the caller)."""
    if Role.OPEN in viewer.roles:
        return action is not Action.EVALUATE
    actors = _ACTORS[action]
    if SCOPE_WRITE not in viewer.scopes:  # a department system acts only with the write scope
        actors = actors - {Role.SERVICE}
    return _granted_by(viewer, actors, facts)


def can_dispatch(viewer: Viewer, facts: CaseFacts | None = None) -> bool:
    """Whether ``viewer`` may dispatch this case (or, with no facts, may dispatch at all: the pool view)."""
    if facts is None:
        return bool(viewer.roles & {Role.DISTRICT, Role.STREET, Role.OPEN})
    return can_act(viewer, Action.DISPATCH, facts)


class Disclosure(StrEnum):
    """How a personal field is shown: in clear (audited), masked, or withheld entirely."""

    CLEAR = "clear"
    MASKED = "masked"
    WITHHELD = "withheld"


_UNMASKERS = frozenset({Role.DISTRICT, Role.STREET, Role.COMMUNITY, Role.DEPARTMENT, Role.PETITION_STAFF})


def _sees_petitioner(viewer: Viewer, facts: CaseFacts) -> bool:
    return _granted_by(viewer, frozenset({Role.PETITION_STAFF}), facts)


def can_unmask(viewer: Viewer, field: str, facts: CaseFacts) -> bool:
    """Whether ``viewer`` may read ``field`` (name, phone, id_number, address) of the parties in clear.

    Only ever on explicit request, and each clear read is written to the audit log by the caller.
    """
    if field not in PERSONAL_FIELDS or not can_view_case(viewer, facts):
        return False
    if facts.petition:
        return _sees_petitioner(viewer, facts)
    if _granted_by(viewer, _UNMASKERS, facts):
        return True
    return Role.SERVICE in viewer.roles and SCOPE_PERSONAL in viewer.scopes and _granted_by(
        viewer, frozenset({Role.SERVICE}), facts)


def disclosure(viewer: Viewer, field: str, facts: CaseFacts, *, unmask: bool = False) -> Disclosure:
    """How ``field`` of a party of this case is shown to ``viewer``; ``unmask`` is the explicit request."""
    if not can_view_case(viewer, facts):
        return Disclosure.WITHHELD
    if facts.petition and not _sees_petitioner(viewer, facts) and not (
            Role.RESIDENT in viewer.roles and viewer.identity_hashes & facts.party_hashes):
        return Disclosure.WITHHELD
    if unmask and can_unmask(viewer, field, facts):
        return Disclosure.CLEAR
    return Disclosure.MASKED

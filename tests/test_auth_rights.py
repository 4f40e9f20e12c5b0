"""The rights policy: every demo account × a set of cases, for reading, writing and personal data."""

from __future__ import annotations

import pytest

from auth.accounts import AccountBook
from auth.context import viewer_from_claims
from auth.identity import IdentityHasher
from auth.idp import IdentityProvider
from auth.keys import SigningKey
from auth.rights import (
    Action,
    CaseFacts,
    Disclosure,
    Scope,
    can_act,
    can_dispatch,
    can_unmask,
    can_view_case,
    can_view_cluster,
    can_view_stats,
    case_scope,
    disclosure,
    is_operator,
    is_respondent_role,
)
from auth.tokens import TokenValidator
from auth.viewer import Role, Viewer

HASHER = IdentityHasher(b"rights-test-key")
ISSUER = "http://gateway.test"
CITIZEN = HASHER.hashes(phone="13728835126", id_number="440306198807124315")  # the sandbox's R-CITIZEN
SOMEONE = HASHER.hashes(phone="13900001111")

TIANLIAO = frozenset({"440311", "440311005", "440311005002"})     # 玉塘街道 田寮社区
YUTANG_OTHER = frozenset({"440311", "440311005", "440311005001"})  # 玉塘街道, another community
MATIAN = frozenset({"440311", "440311006", "440311006003"})        # 马田街道
GONGMING = frozenset({"440311", "440311002", "440311002001"})      # 公明街道

CASES = {
    "hotline_tianliao": CaseFacts("hotline12345", TIANLIAO, party_hashes=CITIZEN),
    "mayor_yutang": CaseFacts("mayor", YUTANG_OTHER, party_hashes=SOMEONE),
    "court_wages_matian": CaseFacts("court", MATIAN, department_ids=frozenset({"dept-labor"}),
                                    party_hashes=SOMEONE),
    "open311_gongming": CaseFacts("open311", GONGMING),
    "petition_tianliao": CaseFacts("petition", TIANLIAO, party_hashes=CITIZEN,
                                   department_ids=frozenset({"dept-housing"}),
                                   respondent_department_ids=frozenset({"dept-housing"})),
    "petition_against_labor": CaseFacts("petition", GONGMING, department_ids=frozenset({"dept-labor"}),
                                        respondent_department_ids=frozenset({"dept-labor"})),
    "legalaid_citizen": CaseFacts("legalaid", GONGMING, party_hashes=CITIZEN),
}
ACCOUNTS = ("center", "yutang", "tianliao", "labor", "xinfang", "citizen", "labor-system", "anonymous")
# Who may know each case exists, in ACCOUNTS order.
VISIBLE = {
    "hotline_tianliao":       (1, 1, 1, 0, 0, 1, 0, 0),
    "mayor_yutang":           (1, 1, 0, 0, 0, 0, 0, 0),
    "court_wages_matian":     (1, 0, 0, 1, 0, 0, 1, 0),
    "open311_gongming":       (1, 0, 0, 0, 0, 0, 0, 0),
    "petition_tianliao":      (1, 1, 1, 0, 1, 1, 0, 0),
    "petition_against_labor": (1, 0, 0, 0, 1, 0, 0, 0),
    "legalaid_citizen":       (1, 0, 0, 0, 0, 1, 0, 0),
}
C, M, W = Disclosure.CLEAR, Disclosure.MASKED, Disclosure.WITHHELD
# How a party's phone shows when the viewer asks to unmask it, in ACCOUNTS order.
UNMASKED_PHONE = {
    "hotline_tianliao":       (C, C, C, W, W, M, W, W),
    "court_wages_matian":     (C, W, W, C, W, W, M, W),
    "petition_tianliao":      (W, W, W, W, C, M, W, W),
    "petition_against_labor": (W, W, W, W, C, W, W, W),
}


async def _demo_viewers() -> dict[str, Viewer]:
    """Every demo account's viewer, through the real token path (issue → validate → claims)."""
    book = AccountBook.load()
    idp = IdentityProvider(ISSUER, "minsheng", book, signing_key=SigningKey.generate("EdDSA"), hasher=HASHER)
    validator = TokenValidator(ISSUER, "minsheng", idp)
    viewers = {"anonymous": Viewer.anonymous()}
    for username in ACCOUNTS[:-2]:
        user = book.user(username)
        assert user is not None
        viewers[username] = viewer_from_claims(await validator.validate(idp.issue_for_user(user)))
    client = book.client("labor-system")
    assert client is not None
    claims = await validator.validate(idp.issue_for_client(client, client.scopes))
    viewers["labor-system"] = viewer_from_claims(claims)
    return viewers


@pytest.fixture(scope="module")
async def viewers() -> dict[str, Viewer]:
    return await _demo_viewers()


@pytest.mark.parametrize("case", list(VISIBLE))
def test_visibility_matrix(viewers: dict[str, Viewer], case: str) -> None:
    facts = CASES[case]
    seen = tuple(int(can_view_case(viewers[name], facts)) for name in ACCOUNTS)
    assert seen == VISIBLE[case]
    # A list resolver filtering by the scope's index terms finds exactly what node(id) would show.
    scoped = tuple(int(case_scope(viewers[name]).allows(facts)) for name in ACCOUNTS)
    assert scoped == seen


def test_the_citizen_sees_appeals_in_three_channels(viewers: dict[str, Viewer]) -> None:
    channels = {f.channel for f in CASES.values() if can_view_case(viewers["citizen"], f)}
    assert channels == {"hotline12345", "petition", "legalaid"}


def test_scopes_are_index_terms(viewers: dict[str, Viewer]) -> None:
    assert case_scope(viewers["center"]) == Scope(everything=True)
    assert case_scope(viewers["yutang"]) == Scope(region_ids=frozenset({"440311005"}))
    assert case_scope(viewers["tianliao"]) == Scope(region_ids=frozenset({"440311005002"}))
    labor = frozenset({"dept-labor"})
    assert case_scope(viewers["labor"]) == Scope(department_ids=labor, exclude_petitions_against=labor)
    assert case_scope(viewers["labor-system"]) == Scope(department_ids=labor, exclude_petitions_against=labor)
    petition = frozenset({"dept-petition"})
    assert case_scope(viewers["xinfang"]) == Scope(department_ids=petition, petitions=True,
                                                   exclude_petitions_against=petition)
    assert case_scope(viewers["citizen"]) == Scope(identity_hashes=CITIZEN)
    assert case_scope(viewers["anonymous"]).nothing


def test_a_resident_without_verified_identity_sees_nothing() -> None:
    unverified = Viewer("user:x", "x", "某人", frozenset({Role.RESIDENT}))
    assert case_scope(unverified).nothing
    assert not any(can_view_case(unverified, facts) for facts in CASES.values())


def test_roles_combine_as_a_union() -> None:
    both = Viewer("user:x", "x", "兼职", frozenset({Role.STREET, Role.DEPARTMENT}),
                  region_ids=frozenset({"440311006"}), department_id="dept-housing")
    assert can_view_case(both, CASES["court_wages_matian"])   # by its street
    assert can_view_case(both, CASES["mayor_yutang"]) is False
    # …but never a petition that complains about its own unit, whatever else grants it.
    against_housing = CaseFacts("petition", MATIAN, respondent_department_ids=frozenset({"dept-housing"}))
    assert can_view_case(both, against_housing) is False


@pytest.mark.parametrize("case", list(UNMASKED_PHONE))
def test_unmasking_matrix(viewers: dict[str, Viewer], case: str) -> None:
    facts = CASES[case]
    shown = tuple(disclosure(viewers[name], "phone", facts, unmask=True) for name in ACCOUNTS)
    assert shown == UNMASKED_PHONE[case]


def test_without_an_unmask_request_everything_is_masked(viewers: dict[str, Viewer]) -> None:
    for facts in CASES.values():
        for name in ACCOUNTS:
            assert disclosure(viewers[name], "id_number", facts) is not Disclosure.CLEAR


def test_petitioner_identity_only_for_petition_staff(viewers: dict[str, Viewer]) -> None:
    petition = CASES["petition_tianliao"]
    for name in ("center", "yutang", "tianliao", "labor", "labor-system", "citizen", "anonymous"):
        assert not can_unmask(viewers[name], "name", petition), name
    for field in ("name", "phone", "id_number", "address"):
        assert can_unmask(viewers["xinfang"], field, petition)
    # Even the district command centre, which sees the matter, does not see who raised it.
    assert can_view_case(viewers["center"], petition)
    assert disclosure(viewers["center"], "name", petition, unmask=True) is Disclosure.WITHHELD
    # The petition bureau never sees a petitioner of a petition against itself.
    against_bureau = CaseFacts("petition", TIANLIAO, respondent_department_ids=frozenset({"dept-petition"}))
    assert not can_view_case(viewers["xinfang"], against_bureau)
    assert disclosure(viewers["xinfang"], "name", against_bureau, unmask=True) is Disclosure.WITHHELD


def test_the_unit_complained_about_never_sees_the_petition(viewers: dict[str, Viewer]) -> None:
    against_labor = CASES["petition_against_labor"]
    assert "dept-labor" in against_labor.department_ids  # even when (wrongly) assigned to it
    for name in ("labor", "labor-system"):
        assert not can_view_case(viewers[name], against_labor)
        assert not case_scope(viewers[name]).allows(against_labor)
        assert not can_act(viewers[name], Action.SIGN, against_labor)


def test_a_petition_flag_on_another_channel_counts() -> None:
    flagged = CaseFacts("hotline12345", TIANLIAO, is_petition=True, party_hashes=SOMEONE)
    officer = Viewer("u", "yutang", "玉塘", frozenset({Role.STREET}), region_ids=frozenset({"440311005"}))
    assert disclosure(officer, "name", flagged, unmask=True) is Disclosure.WITHHELD


@pytest.mark.parametrize(("name", "action", "case", "allowed"), [
    ("center", Action.DISPATCH, "open311_gongming", True),
    ("center", Action.MERGE, "mayor_yutang", True),
    ("yutang", Action.DISPATCH, "hotline_tianliao", True),
    ("yutang", Action.DISPATCH, "court_wages_matian", False),
    ("tianliao", Action.DISPATCH, "hotline_tianliao", False),
    ("tianliao", Action.WHISTLE, "hotline_tianliao", True),
    ("tianliao", Action.WHISTLE, "mayor_yutang", False),
    ("labor", Action.SIGN, "court_wages_matian", True),
    ("labor", Action.RETURN, "court_wages_matian", True),
    ("labor", Action.SIGN, "hotline_tianliao", False),
    ("labor", Action.DISPATCH, "court_wages_matian", False),
    ("labor-system", Action.PROGRESS, "court_wages_matian", True),
    ("xinfang", Action.PROGRESS, "petition_tianliao", True),
    ("xinfang", Action.DISPATCH, "petition_tianliao", False),
    ("citizen", Action.EVALUATE, "hotline_tianliao", True),
    ("citizen", Action.EVALUATE, "mayor_yutang", False),
    ("citizen", Action.DISPATCH, "hotline_tianliao", False),
    ("anonymous", Action.EVALUATE, "hotline_tianliao", False),
])
def test_writes(viewers: dict[str, Viewer], name: str, action: Action, case: str, allowed: bool) -> None:
    assert can_act(viewers[name], action, CASES[case]) is allowed


def test_a_read_only_department_system_cannot_write(viewers: dict[str, Viewer]) -> None:
    system = viewers["labor-system"]
    read_only = Viewer(system.subject, system.username, system.display_name, system.roles,
                       department_id=system.department_id, scopes=frozenset({"cases:read"}))
    facts = CASES["court_wages_matian"]
    assert can_view_case(read_only, facts)
    assert not can_act(read_only, Action.SIGN, facts)
    no_scope = Viewer("client:x", "x", "x", frozenset({Role.SERVICE}), department_id="dept-labor")
    assert not can_view_case(no_scope, facts)


def test_dispatch_pool_stats_and_operators(viewers: dict[str, Viewer]) -> None:
    assert [int(can_dispatch(viewers[n])) for n in ACCOUNTS] == [1, 1, 0, 0, 0, 0, 0, 0]
    assert [int(can_view_stats(viewers[n])) for n in ACCOUNTS] == [1, 1, 1, 1, 1, 0, 1, 0]
    assert [int(is_operator(viewers[n])) for n in ACCOUNTS] == [1, 0, 0, 0, 0, 0, 0, 0]


def test_open_mode_sees_all_but_never_unmasks() -> None:
    viewer = Viewer.open_access()
    assert all(can_view_case(viewer, facts) for facts in CASES.values())
    assert disclosure(viewer, "phone", CASES["hotline_tianliao"], unmask=True) is Disclosure.MASKED


def test_respondent_roles() -> None:
    assert is_respondent_role("被申请人")
    assert not is_respondent_role("申请人")
    assert not is_respondent_role(None)


def test_a_cluster_is_visible_through_any_visible_member(viewers: dict[str, Viewer]) -> None:
    wages = [CASES["hotline_tianliao"], CASES["court_wages_matian"], CASES["petition_tianliao"]]
    assert [int(can_view_cluster(viewers[n], wages)) for n in ACCOUNTS] == [1, 1, 1, 1, 1, 1, 1, 0]
    assert not can_view_cluster(viewers["labor"], [CASES["open311_gongming"]])
    assert not can_view_cluster(viewers["center"], [])

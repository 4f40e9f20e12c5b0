"""Masking personal data: the shapes, and what each role sees of a case's parties."""

from __future__ import annotations

import pytest

from auth.masking import (
    mask_address,
    mask_case_address,
    mask_id_number,
    mask_name,
    mask_party,
    mask_phone,
    mask_text,
    personal_kind,
)
from auth.rights import CaseFacts, Disclosure
from auth.viewer import Role, Viewer
from connectors.records import Party

TIANLIAO = frozenset({"440311", "440311005", "440311005002"})
RESIDENT_HASH = frozenset({"phone:abc"})

CENTER = Viewer("user:center", "center", "指挥中心", frozenset({Role.DISTRICT}))
YUTANG = Viewer("user:yutang", "yutang", "玉塘街道", frozenset({Role.STREET}),
                region_ids=frozenset({"440311005"}))
LABOR = Viewer("user:labor", "labor", "区人力资源局", frozenset({Role.DEPARTMENT}),
               department_id="dept-labor")
XINFANG = Viewer("user:xinfang", "xinfang", "区信访局", frozenset({Role.PETITION_STAFF}),
                 department_id="dept-petition")
CITIZEN = Viewer("user:citizen", "citizen", "陈晓明", frozenset({Role.RESIDENT}),
                 identity_hashes=RESIDENT_HASH)

CHEN = Party(role="诉求人", name="陈晓明", phone="13827561234", id_number="440311199003152340")
COMPANY = Party(role="被申请人", name="深圳市光明某某电子有限公司", phone="0755-26881234",
                is_organisation=True)
HOTLINE = CaseFacts("hotline12345", TIANLIAO, party_hashes=RESIDENT_HASH)
PETITION = CaseFacts("petition", TIANLIAO, party_hashes=RESIDENT_HASH)


@pytest.mark.parametrize(("name", "masked"), [
    ("陈晓明", "陈**"), ("张三", "张*"), ("欧阳娜娜", "欧阳**"), ("欧阳", "欧*"), ("司马光", "司马*"),
    ("王", "*"), ("", ""), ("John Smith", "J*** S****"), ("买买提·艾力", "买*****"),
])
def test_names_keep_the_surname(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"),
    ("+86 138 1234 5678", "+86 138 **** 5678"),
    ("0755-26881234", "0755-****1234"),
    ("26881234", "****1234"),
    ("12345", "***45"),
])
def test_phones(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_national_ids_keep_first_three_and_last_four() -> None:
    assert mask_id_number("440311199003152340") == "440***********2340"
    assert mask_id_number("44031119900315234X") == "440***********234X"
    assert mask_id_number("440311900315234") == "440********5234"
    assert mask_id_number("12345") == "*****"


@pytest.mark.parametrize(("address", "masked"), [
    ("广东省深圳市光明区玉塘街道田寮社区东能华府3栋1204室", "广东省深圳市光明区玉塘街道田寮社区东能华府***"),
    ("光明区松白路4018号", "光明区松白路***"),
    ("田寮村三巷十二号", "田寮村三巷***"),
    ("东能华府A栋二单元", "东能华府***"),
    ("光明大道与华夏路交汇处", "光明大道与华夏路交汇处"),
])
def test_addresses_keep_road_or_estate(address: str, masked: str) -> None:
    assert mask_address(address) == masked


def test_numbers_typed_into_free_text() -> None:
    text = "联系电话13827561234，身份证440311199003152340，订单号2024123456789012。"
    assert mask_text(text) == "联系电话138****1234，身份证440***********2340，订单号2024123456789012。"


def test_personal_kind_by_field_name() -> None:
    names = ("ldhm", "mobile", "sfzh", "id_card", "lxdz", "dz", "xm", "申请人")
    assert [personal_kind(n) for n in names] == [
        "phone", "phone", "id_number", "id_number", "address", "address", "name", "name"]


def test_masked_by_default_for_everyone() -> None:
    for viewer in (CENTER, YUTANG, CITIZEN):
        view = mask_party(CHEN, viewer, HOTLINE)
        assert (view.name, view.phone, view.id_number) == ("陈**", "138****1234", "440***********2340")
        assert view.clear_fields == ()
        assert not view.withheld


def test_unmask_is_honoured_only_where_allowed() -> None:
    clear = mask_party(CHEN, CENTER, HOTLINE, unmask=True)
    assert (clear.name, clear.phone, clear.id_number) == ("陈晓明", "13827561234", "440311199003152340")
    assert clear.clear_fields == ("name", "phone", "id_number")  # what the caller audits
    assert mask_party(CHEN, YUTANG, HOTLINE, unmask=True).clear_fields == ("name", "phone", "id_number")
    refused = mask_party(CHEN, CITIZEN, HOTLINE, unmask=True)
    assert (refused.name, refused.clear_fields) == ("陈**", ())


def test_a_viewer_outside_the_case_gets_nothing() -> None:
    view = mask_party(CHEN, LABOR, HOTLINE, unmask=True)
    assert view.withheld
    assert (view.name, view.phone, view.id_number) == (None, None, None)


def test_organisations_keep_their_name() -> None:
    view = mask_party(COMPANY, YUTANG, HOTLINE)
    assert view.name == "深圳市光明某某电子有限公司"
    assert (view.phone, view.is_organisation) == ("0755-****1234", True)
    assert view.clear_fields == ()


def test_petitioner_is_withheld_from_all_but_petition_staff() -> None:
    for viewer in (CENTER, YUTANG):
        view = mask_party(CHEN, viewer, PETITION, unmask=True)
        assert view.withheld
        assert (view.name, view.phone, view.id_number) == (None, None, None)
    staff = mask_party(CHEN, XINFANG, PETITION)
    assert (staff.name, staff.withheld) == ("陈**", False)
    assert mask_party(CHEN, XINFANG, PETITION, unmask=True).name == "陈晓明"
    own = mask_party(CHEN, CITIZEN, PETITION, unmask=True)  # the petitioner's own view: masked
    assert (own.name, own.withheld) == ("陈**", False)


def test_case_address() -> None:
    address = "光明区玉塘街道田寮社区东能华府3栋1204室"
    masked = "光明区玉塘街道田寮社区东能华府***"
    assert mask_case_address(address, YUTANG, HOTLINE) == (masked, Disclosure.MASKED)
    assert mask_case_address(address, CENTER, HOTLINE, unmask=True) == (address, Disclosure.CLEAR)
    # A petition's place is shown (masked) to those who handle it, never its house number.
    assert mask_case_address(address, YUTANG, PETITION, unmask=True)[0] == masked
    assert mask_case_address(address, LABOR, HOTLINE) == (None, Disclosure.WITHHELD)

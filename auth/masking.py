"""Masking personal data for display, per the viewer's rights on the case.

Shapes: name ``陈晓明`` → ``陈**`` (the surname stays, compound ones too: ``欧阳娜娜`` → ``欧阳**``),
phone ``13812345678`` → ``138****5678`` (landline ``0755-26881234`` → ``0755-****1234``), national ID
``440311199003152340`` → ``440***********2340`` (first 3 and last 4), address → kept down to the
road or estate, the house number masked (``东能华府3栋1204室`` → ``东能华府***``).

:func:`mask_party` decides per field with :func:`auth.rights.disclosure`: withheld (a petitioner,
for anyone but petition staff), masked, or in clear on an explicit, permitted ``unmask`` request —
its ``clear_fields`` tell the caller what to write to the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from auth.rights import CaseFacts, Disclosure, can_view_case, disclosure
from auth.viewer import Viewer

__all__ = ["PartyLike", "PartyView", "mask_address", "mask_case_address", "mask_id_number", "mask_name",
           "mask_party", "mask_personal", "mask_phone", "mask_text", "personal_kind"]

# Two-character surnames (复姓) still in use; the first match keeps both characters.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "令狐", "端木", "轩辕", "独孤", "南宫", "西门", "万俟",
    "闻人", "澹台", "公冶", "宗政", "濮阳", "太史", "申屠", "钟离", "呼延", "赫连",
    "百里", "东郭", "司空", "第五",
})
_CJK = re.compile(r"[\u3400-\u9fff]")


def mask_name(name: str) -> str:
    """Keep the surname, mask the given name: ``陈晓明`` → ``陈**``, ``欧阳娜娜`` → ``欧阳**``."""
    name = name.strip()
    if len(name) <= 1:
        return "*" if name else name
    if _CJK.match(name):
        keep = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[:keep] + "*" * (len(name) - keep)
    # Non-Chinese names (Latin, ·-joined minority names): the first letter of each part.
    return re.sub(r"(?<=\w)\w", "*", name)


def _mask_digits(value: str, keep_head: int, keep_tail: int) -> str:
    """Mask the digits of ``value`` except the first ``keep_head`` and last ``keep_tail``; separators stay."""
    count = sum(ch.isdigit() for ch in value)
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            seen += 1
            ch = ch if seen <= keep_head or seen > count - keep_tail else "*"
        out.append(ch)
    return "".join(out)


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``: of the last eleven digits, the middle four go."""
    phone = phone.strip()
    digits = sum(ch.isdigit() for ch in phone)
    if digits >= 11:
        return _mask_digits(phone, digits - 8, 4)
    if digits >= 7:
        return _mask_digits(phone, 0, 4)
    return _mask_digits(phone, 0, 2 if digits > 2 else 0)


def mask_id_number(id_number: str) -> str:
    """``440311199003152340`` → ``440***********2340``: the first three and last four characters stay."""
    value = id_number.strip()
    if len(value) <= 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


# A house number starts at the first digit, or at a Chinese numeral / building letter before 号栋座…
_HOUSE_NUMBER = re.compile(
    r"[0-9０-９]|[一二三四五六七八九十百零〇两]+(?=[号號栋棟幢座单元楼樓层室户])|[A-Za-zＡ-Ｚａ-ｚ](?=[座栋棟幢])")


def mask_address(address: str) -> str:
    """Keep the address down to the road or estate, mask the rest: ``松白路4018号`` → ``松白路***``."""
    address = address.strip()
    match = _HOUSE_NUMBER.search(address)
    if match is None:
        return address  # no house number: road or estate level already
    return address[:match.start()] + "***"


_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{3})(\d{11})(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """Mask mobile and national-ID numbers typed into free text (``联系电话13812345678``)."""
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 11}{m.group(3)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def personal_kind(field_name: str) -> str:
    """Which of name / phone / id_number / address a channel's personal field holds, by its name."""
    name = field_name.lower()
    if any(word in name for word in ("phone", "mobile", "tel", "ldhm", "lxdh", "电话", "手机")):
        return "phone"
    if any(word in name for word in ("id_number", "idcard", "id_card", "id_no", "sfz", "身份证")):
        return "id_number"
    if any(word in name for word in ("addr", "dz", "地址", "住址")):
        return "address"
    return "name"  # a name, or personal data of an unknown kind: only the first character shows


_MASKERS = {"name": mask_name, "phone": mask_phone, "id_number": mask_id_number, "address": mask_address}


def mask_personal(kind: str, value: str) -> str:
    """Mask ``value`` as the ``kind`` of :func:`personal_kind` says."""
    return _MASKERS.get(kind, mask_name)(value)


class PartyLike(Protocol):
    """What :func:`mask_party` reads of a party (``connectors.records.Party`` fits)."""

    @property
    def role(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def id_number(self) -> str | None: ...
    @property
    def is_organisation(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PartyView:
    """A party as one viewer may see it."""

    role: str | None
    name: str | None
    phone: str | None
    id_number: str | None
    address: str | None
    is_organisation: bool
    withheld: bool                       # identity withheld (petitioner confidentiality): all fields None
    clear_fields: tuple[str, ...] = ()   # fields shown in clear: the caller writes one audit entry for them


def mask_party(party: PartyLike, viewer: Viewer, facts: CaseFacts, unmask: bool = False) -> PartyView:
    """``party`` of the case ``facts`` describes, as ``viewer`` may see it.

    ``unmask`` is the viewer's explicit request to read personal data in clear; it is honoured
    only where :func:`auth.rights.can_unmask` allows, and ``clear_fields`` lists what was shown.
    """
    shown: dict[str, str | None] = {}
    clear: list[str] = []
    withheld = False
    for field in ("name", "phone", "id_number", "address"):
        value: str | None = getattr(party, field, None)
        how = disclosure(viewer, field, facts, unmask=unmask)
        withheld = withheld or how is Disclosure.WITHHELD
        if value is None or how is Disclosure.WITHHELD:
            shown[field] = None
        elif field == "name" and party.is_organisation:
            shown[field] = value  # organisations' names are public
        elif how is Disclosure.CLEAR:
            shown[field] = value
            clear.append(field)
        else:
            shown[field] = mask_personal(field, value)
    return PartyView(role=getattr(party, "role", None), name=shown["name"], phone=shown["phone"],
                     id_number=shown["id_number"], address=shown["address"],
                     is_organisation=party.is_organisation, withheld=withheld, clear_fields=tuple(clear))


def mask_case_address(address: str | None, viewer: Viewer, facts: CaseFacts,
                      unmask: bool = False) -> tuple[str | None, Disclosure]:
    """The case's own address (where the problem is): masked below the road/estate unless unmasked.

    Unlike a party's address it is never withheld from a viewer who may see the case — handlers must
    know where to go — but a petition's stays masked for all but petition staff.
    """
    how = disclosure(viewer, "address", facts, unmask=unmask)
    if address is None:
        return None, how
    if how is Disclosure.CLEAR:
        return address, how
    if how is Disclosure.WITHHELD and not can_view_case(viewer, facts):
        return None, how
    return mask_address(address), Disclosure.MASKED


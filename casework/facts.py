"""The concrete facts an appeal states about its object: sums of money, buildings and rooms, months,
how many people it concerns, which part of a place (an estate's phase, a gate, a road's section).

Two reports of one incident state the same facts however they word them (36500元 / 3.65万元 / 三万余元,
19栋3202 / 19-3202); two look-alike incidents at one place (two wage claims against one company, two
leaks in one estate) usually differ in them. :func:`facts` reads them as comparable values and
:func:`conflict` tells whether two reports contradict each other — a veto for the 民声云 matcher
(casework/dedup.py), never a reason to merge. Amounts are ranges (3万多元 is 30000–40000), so a vague
mention never contradicts an exact one it covers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Facts", "chinese_number", "conflict", "facts"]

_CN = "零一二三四五六七八九"
_FINANCIAL = str.maketrans("壹贰叁肆伍陆柒捌玖拾佰仟", "一二三四五六七八九十百千")
"""The capital numerals of receipts and judgments (人民币叁万贰仟元整) as their everyday twins."""
_DIGIT_WORDS = "零一二两三四五六七八九十百千壹贰叁肆伍陆柒捌玖拾佰仟"
_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{_DIGIT_WORDS}万]+)"
_AMOUNT = re.compile(rf"({_NUM})(万|千)?(多|余)?(?:元|块|圆)")
# 工资3.2万没发, 欠了8万多: 万 alone is money, unless a measure word (2万平方米, 3万人) or more digits follow
_MEASURES = "多余元块圆平米人户名位个次件吨辆株棵亩字步条"
_TEN_THOUSANDS = re.compile(rf"({_NUM})(万)(多|余)?(?![{_MEASURES}{_DIGIT_WORDS}\d])")
# 19栋3202, 5号楼2单元501: the building, its unit (entrance) if given, and the room
_BUILDING = re.compile(r"(\d{1,3}|[一二三四五六七八九十]{1,3}|[a-z])(?:栋|幢|号楼|座)"
                       r"(?:(\d{1,2}|[一二三四五六七八九十]{1,2})单元)?(\d{3,4})?")
_ROOM = re.compile(r"(?<![\d.])(\d{1,3})-(\d{3,4})(?!\d)")
# 1203室, 803号房 without their building (房 alone is too often 房租, 房东: 3000房东不退押金)
_ROOM_ALONE = re.compile(r"(?<![\d\-.栋幢座楼元])(\d{3,4})(?:室|号房)")
_MONTHS = re.compile(r"(\d{1,2}|[两三四五六七八九十]{1,2})个多?月")
# 41人, 四十一名工人, 20多名农民工, 100多户: the people a (group) appeal speaks for
_WHO = "人|户|工人|农民工|工友|员工|业主|居民|学员|会员|家长"
_PEOPLE = re.compile(rf"({_NUM})(多|余)?(?:名|位|个)?(?:{_WHO})")
# the part of a place: 东能华府二期 / 一期, 东门 / 西门, 光明大道南段 / 北段, 路的东侧 / 西侧. Not
# 分12期(付款), 第一期(培训), 逾期, 期间; not 西门子, 华南门窗
_PHASE = re.compile(r"(?<![分第\d])(\d{1,2}|[一二三四五六七八九十]{1,3})期(?![间限内满末货款付还数])")
_SIDE = re.compile(r"([东南西北])(门|段|侧)(?![子诊窗面市票])")
_TOLERANCE = 0.02
_FEWEST_PEOPLE = 3  # "两人", "一个人": who went or who is hurt, not how many the matter concerns


@dataclass(frozen=True, slots=True)
class Facts:
    amounts: tuple[tuple[float, float], ...] = ()   # yuan, (low, high)
    buildings: tuple[str, ...] = ()                 # "19", "19/3202" (building/room), "5:2/501", "/3202"
    months: tuple[int, ...] = ()
    people: tuple[tuple[float, float], ...] = ()    # head counts, (low, high)
    parts: tuple[str, ...] = ()                     # "期2", "门东", "段南", "侧西": kind, then which

    def dump(self) -> list[list[object]]:
        dumped: list[list[object]] = [[list(a) for a in self.amounts], list(self.buildings),
                                       list(self.months), [list(p) for p in self.people]]
        return [*dumped, list(self.parts)] if self.parts else dumped  # most state no part: stored as before

    @classmethod
    def load(cls, raw: list[Any] | None) -> Facts:
        if not raw:
            return cls()
        # signatures stored before head counts have three lists, and before parts four; most have no parts
        amounts, buildings, months, *rest = raw
        people = rest[0] if rest else []
        parts = rest[1] if len(rest) > 1 else []
        return cls(tuple((float(a[0]), float(a[1])) for a in amounts), tuple(map(str, buildings)),
                   tuple(map(int, months)), tuple((float(p[0]), float(p[1])) for p in people),
                   tuple(map(str, parts)))


def chinese_number(text: str) -> float | None:
    """Arabic or Chinese numerals (三万六千五百, 叁万陆仟伍佰, 十五, 两, 3.65, 32,000) as a number; None if
    unreadable."""
    text = text.replace(",", "").translate(_FINANCIAL)
    try:
        return float(text)
    except ValueError:
        pass
    total, section, digit = 0, 0, 0
    for char in text:
        if char in _CN or char == "两":
            digit = 2 if char == "两" else _CN.index(char)
        elif char in "十百千":
            section += (digit or 1) * {"十": 10, "百": 100, "千": 1000}[char]
            digit = 0
        elif char == "万":
            total += (section + digit) * 10000
            section, digit = 0, 0
        else:
            return None
    return float(total + section + digit)


def _amount(number: str, unit: str | None, vague: str | None) -> tuple[float, float] | None:
    value = chinese_number(number)
    if value is None or value <= 0:
        return None
    scale = {"万": 10000, "千": 1000}.get(unit or "", 1)
    low = value * scale
    if not vague:
        return low * (1 - _TOLERANCE), low * (1 + _TOLERANCE)
    # "3万多", "2000多", "三千多": up to the next step of the number's own last digit
    step = scale if unit else 10 ** max(len(str(int(value))) - 1, 0)
    return low, low + step


def facts(text: str) -> Facts:
    """The amounts, buildings/rooms and month counts stated in normalised ``text``."""
    amounts = [a for pattern in (_AMOUNT, _TEN_THOUSANDS) for m in pattern.finditer(text)
               if (a := _amount(*m.groups())) is not None]
    buildings = []
    for number, unit, room in _BUILDING.findall(text):
        if number.isascii() and number.isalpha():  # b栋
            name = number
        elif (value := chinese_number(number)) is not None:
            name = str(int(value))
        else:
            continue
        if unit and (entrance := chinese_number(unit)):
            name += f":{int(entrance)}"
        buildings.append(f"{name}/{room}" if room else name)
    buildings += [f"{b}/{r}" for b, r in _ROOM.findall(text)]
    buildings += [f"/{r}" for r in _ROOM_ALONE.findall(text)]
    months = [int(v) for m in _MONTHS.findall(text) if (v := chinese_number(m)) is not None and v >= 2]
    people = [p for m in _PEOPLE.finditer(text) if (p := _people(*m.groups())) is not None]
    return Facts(tuple(dict.fromkeys(amounts)), tuple(dict.fromkeys(buildings)), tuple(dict.fromkeys(months)),
                 tuple(dict.fromkeys(people)), _parts(text))


def _parts(text: str) -> tuple[str, ...]:
    parts = []
    if "期" in text:
        parts += [f"期{int(value)}" for number in _PHASE.findall(text) if (value := chinese_number(number))]
    if "门" in text or "段" in text or "侧" in text:
        parts += [f"{kind}{side}" for side, kind in _SIDE.findall(text)]
    return tuple(dict.fromkeys(parts))


def _people(number: str, vague: str | None) -> tuple[float, float] | None:
    value = chinese_number(number)
    if value is None or value < _FEWEST_PEOPLE:
        return None
    if not vague:
        return value, value
    return value, value + 10 ** max(len(str(int(value))) - 1, 0)  # 20多 is 20–30, 100多 100–200


def conflict(a: Facts, b: Facts, *, reach: bool = True, floors: bool = False) -> bool:
    """Whether ``a`` and ``b`` state different values of the same kind of fact (none in common).

    ``reach=False`` leaves out the facts that say how far the matter reaches — the building or home, the
    part of the place, how many people — for an incident that strikes a whole area (an outage): each
    building's residents name their own, and a different one contradicts nothing. ``floors=True`` takes
    two rooms one floor apart in one building (1203 / 1303) as the two ends of one matter between flats:
    the flat below names its own, the flat above (the leak's source, the noise's) its own.
    """
    if a.amounts and b.amounts and not any(
            lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a.amounts for lo2, hi2 in b.amounts):
        return True
    if reach and a.buildings and b.buildings and not _buildings_agree(a.buildings, b.buildings, floors):
        return True
    if reach and a.people and b.people and not any(
            lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a.people for lo2, hi2 in b.people):
        return True
    if reach and a.parts and b.parts and _parts_differ(a.parts, b.parts):
        return True
    return bool(a.months and b.months and not set(a.months) & set(b.months))


def _parts_differ(a: Iterable[str], b: Iterable[str]) -> bool:
    """Both name a part of one kind (a phase, a gate …) and none the same: 二期 / 一期, 东门 / 西门."""
    kinds_a, kinds_b = _by_kind(a), _by_kind(b)
    return any(kinds_a[kind].isdisjoint(kinds_b[kind]) for kind in kinds_a.keys() & kinds_b.keys())


def _by_kind(parts: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for part in parts:
        found.setdefault(part[0], set()).add(part)
    return found


def _buildings_agree(a: Iterable[str], b: Iterable[str], floors: bool = False) -> bool:
    for x in a:
        for y in b:
            bx, _, rx = x.partition("/")
            by, _, ry = y.partition("/")
            (bx, _, ux), (by, _, uy) = bx.partition(":"), by.partition(":")
            # a room given without its building may be in the other's building, a building without its
            # unit may be the other's unit
            if _same(bx, by) and _same(ux, uy) and (_same(rx, ry) or (floors and _floor_apart(rx, ry))):
                return True
    return False


def _floor_apart(a: str, b: str) -> bool:
    """1203 and 1303, 908 and 1008: the same flat of adjacent floors (the last two digits are the flat)."""
    return len(a) >= 3 and len(b) >= 3 and a[-2:] == b[-2:] and abs(int(a[:-2]) - int(b[:-2])) == 1


def _same(a: str, b: str) -> bool:
    return a == b or not a or not b

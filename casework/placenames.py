"""Where an appeal's words say it happened: named places, their keys, house numbers and crossings.

Named places (estates, roads, markets, companies, schools …) are found by their generic suffixes, so no
gazetteer is needed: a name is the 2–8 characters before a suffix of ``data/dedup_words.yaml``, and the
words that stand before a suffix without naming a place (交汇处路(灯), 老板跑路) name none. A place is
compared by its *key* (:func:`place_keys`), the two characters before its suffix, order-free and tagged
with the suffix's kind, so 东能华府 / 能东华府 agree; names that differ only by a homophone (锦绣 /
锦秀) agree by sound (:func:`sounds_of`). House numbers on a road (address or words) and the crossings
a text names tell spots along one place apart. The 民声云 matcher (:mod:`casework.dedup`) compares
what this module reads.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from casework.facts import chinese_number
from casework.text import runs, sounds

__all__ = ["address_numbers", "boilerplate", "crossings", "keys_of", "landmarks", "named_places",
           "place_keys", "road_numbers", "said_numbers", "sounds_of"]

WORDS_FILE = Path(__file__).parent / "data" / "dedup_words.yaml"
_ROAD_END = "(?:大道|大街|公路|路|街)"
"""What ends a road's name, in the patterns below (a name ending 公路 also ends 路: one match either way)."""
_NUMBERED = re.compile(rf"^([\u4e00-\u9fff]{{1,6}}?{_ROAD_END})(\d+)号")
_BEFORE_ROAD = re.compile(r"^.*(?:街道|社区|[区市县镇])")
_SAID_NUMBER = re.compile(rf"([\u4e00-\u9fff]{{2,8}}?{_ROAD_END})"
                          r"(\d{1,5}|[一二三四五六七八九十百零]{1,6})号")
"""A house number a text gives on a road (华夏路88号): a post without an address field gives it in words."""
_ROAD = rf"[\u4e00-\u9fff]{{2,6}}?{_ROAD_END}"
_CROSSING = re.compile(rf"({_ROAD})(?:与|和|跟|同)({_ROAD})(?:交叉|十字|路口|交汇|交界|交口)")
"""Two roads' crossing (光明大道与华夏路交汇处): on a long road, the spot."""
_ROAD_NUMBER = re.compile(r"(.+?)(\d+)")
_APART = re.compile(r"[\u4e00-\u9fff]{2,3}街道(?:办事处|办)?|[\u4e00-\u9fff]{2,4}社区|[的在]")
"""What no named place runs across: a sub-district or community named in a text, and 的 or 在 (楼下的路(面)
and 有人在河(心路) name nothing; 东能华府的…, 在河心路… still name 东能华府, 河心路)."""
_ADMIN = re.compile(r"^(深圳市|光明区)+")
"""City and district before a name (深圳市永源俊…公司); sub-districts and communities are cut out before."""
_RUN_ON = 4
"""How far past a word that ended a name (道路) the name may run on to its suffix (东坑道路改造工程)."""
_COUNTED = re.compile(r"[一二两三四五六七八九十几多数每各某该本此这那][家户个所条间座处栋位名段]")
"""A count or a pointer, not a name: 两家(公司), 几户(家庭), 这所(学校)."""


@dataclass(frozen=True, slots=True)
class _Words:
    place: re.Pattern[str]
    suffix: re.Pattern[str]    # any place suffix: found far faster than ``place``, which tries 2–8 names
    kinds: dict[str, str]
    generic: tuple[str, ...]
    not_names: frozenset[str]
    boilerplate: frozenset[str]


@functools.cache
def _words() -> _Words:
    data = yaml.safe_load(WORDS_FILE.read_text(encoding="utf-8"))
    suffixes = sorted(data["place_suffixes"].split(), key=len, reverse=True)
    place = re.compile(r"([\u4e00-\u9fffa-z0-9]{2,8}?)(" + "|".join(suffixes) + ")")
    any_suffix = re.compile("|".join(suffixes))
    kinds = {suffix: kind for kind, words in data["place_kinds"].items() for suffix in words.split()}
    generic = tuple(sorted(data.get("generic_stems", "").split(), key=len, reverse=True))
    return _Words(place, any_suffix, kinds, generic, frozenset(data["not_names"].split()),
                  frozenset(data["boilerplate"].split()))


def named_places(text: str) -> list[str]:
    """Named places in normalised ``text``: a name of 2–8 characters before a generic place suffix.

    Administrative units are cut out first: 上村社区 is a community (the region signal), not a village
    called 上村, and a name never runs across one (楼村社区楼村小学 names 楼村小学), nor across 的 or 在
    (有人在河心路 names 河心路, not a river called 有人在). Words that stand
    before a suffix without naming anything (交汇处路灯, 困难家庭, 装修公司) are no names
    (:func:`_names_a_place`): real posts say where in such words, and two posts that shared one would
    agree on a place neither gave.
    """
    words = _words()
    found: list[str] = []
    for run in runs(text):
        if words.suffix.search(run, 2) is None:
            continue  # no suffix after a name's two characters: ``place`` cannot match (most runs)
        for part in _APART.split(run):
            found += _names_in(part, words)
    return list(dict.fromkeys(found))


def _names_in(part: str, words: _Words) -> list[str]:
    found = []
    for match in words.place.finditer(part):
        stem, suffix = match.groups()
        if suffix == "街" and part[match.end():match.end() + 1] == "道":
            continue  # 光明街道: a sub-district (the street signal), not a road called 光明街
        if (name := _name(stem, suffix, words)) is not None:
            found.append(name)
        elif stem[-1:] + suffix in words.not_names:
            # the shortest name ended in a word (东坑道路): it may run on to the next suffix
            # (东坑道路改造工程)
            following = words.suffix.search(part, match.end())
            if following is not None and following.start() - match.end() <= _RUN_ON:
                stem = part[max(match.start(), following.start() - 8):following.start()]
                if (name := _name(stem, following.group(), words)) is not None:
                    found.append(name)
    return found


def _name(stem: str, suffix: str, words: _Words) -> str | None:
    """The named place that ``stem`` (up to 8 characters) before ``suffix`` reads, or None when its words
    name no place."""
    name = _ADMIN.sub("", stem)
    # a company is told by its brand, first (永源俊光电科技有限公司), and so is a name ending in generic
    # words (东坑道路改造工程); other names by their end
    keep = 8 if words.kinds.get(suffix) == "company" or _distinctive(name) != name else 4
    name = name[-keep:] if len(name) > keep else name
    return name + suffix if len(name) >= 2 and _names_a_place(name, suffix, words) else None


def _names_a_place(name: str, suffix: str, words: _Words) -> bool:
    """Whether the words before a place suffix name one place rather than any: not a word that
    stands before a suffix without naming (一个小区, 马路, 家庭, 交汇处路(灯)), not an industry alone
    (装修公司, 电子厂: an unnamed one of many), not the forms' words (村民反映河(道)), not a count
    (两家公司). Two texts that shared such a "name" would agree on a place neither of them gave."""
    core = _distinctive(name)
    if suffix in words.not_names or name[-1:] + suffix in words.not_names or core in words.generic:
        return False
    tail = core[-2:]   # what :func:`place_keys` is made of
    return not (name in words.not_names or name[-2:] in words.not_names or tail in words.not_names
                or tail in words.boilerplate or _COUNTED.fullmatch(tail))


@functools.lru_cache(maxsize=1 << 16)
def _distinctive(stem: str) -> str:
    """``stem`` without the generic words it ends with (红星道路改造 → 红星), unless nothing would be left."""
    generic = _words().generic
    while True:
        ending = next((g for g in generic if stem.endswith(g) and len(stem) - len(g) >= 2), None)
        if ending is None:
            return stem
        stem = stem[: -len(ending)]


@functools.lru_cache(maxsize=1 << 16)
def place_keys(name: str) -> frozenset[str]:
    """A named place's key: the two characters before its suffix, order-free (东能华府 and 能东华府 agree;
    反映美盛名苑 and 美盛小区 share 美盛 — the words before a name vary, its end does not), tagged with the
    suffix's kind (光明村 and 光明农贸市场 are two places). Cached: the matcher asks for the same few
    names of every candidate again and again."""
    match = _words().place.fullmatch(name)
    stem, suffix = (match.group(1), match.group(2)) if match else (name[:-1], name[-1:])
    kind = _words().kinds.get(suffix, suffix)
    return frozenset({f"{kind}:{''.join(sorted(_distinctive(stem)[-2:]))}"})


@functools.lru_cache(maxsize=1 << 16)
def keys_of(places: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*(place_keys(p) for p in places))


@functools.lru_cache(maxsize=1 << 14)
def sounds_of(places: tuple[str, ...]) -> frozenset[str]:
    """The places' keys by sound: each key character by each of its toneless readings (锦绣花园 and
    锦秀花园 agree: a pinyin input method put the wrong 秀 in one report). Not a company's: companies'
    brands are made of a few lucky characters that sound alike (鑫联 / 信联 / 新联, 兴誉 / 星誉), and two
    wage claims against two of them read alike; a typo there must not merge them."""
    found: set[str] = set()
    for key in keys_of(places):
        kind, _, chars = key.partition(":")
        if kind != "company":
            found.update(f"{kind}:{'+'.join(sorted(pair))}"
                         for pair in itertools.product(*(sounds(char) for char in chars)))
    return frozenset(found)


@functools.lru_cache(maxsize=1 << 14)
def road_numbers(addresses: tuple[str, ...]) -> Mapping[str, frozenset[str]]:
    """Each road's key (:func:`place_keys`: 在华夏路 is 华夏路) with the house numbers given on it."""
    found: dict[str, set[str]] = {}
    for address in addresses:
        if (parts := _ROAD_NUMBER.fullmatch(address)) is not None:
            road, number = parts.groups()
            for key in place_keys(road):
                found.setdefault(key, set()).add(number)
    return {key: frozenset(numbers) for key, numbers in found.items()}


_NEAR = re.compile(r"(?:小区|社区|的)?(?:旁边|旁的|对面|附近|隔壁|周边|周围|边上|[东西南北]边|后面|背后)")
"""What follows a place named as a landmark: 东能华府(小区)旁边的工地 is about the site, not the estate."""


def landmarks(text: str, places: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``places`` that ``text`` names only as landmarks, every time followed by 旁边, 对面,
    附近 …: a resident names the estate they live in (东能华府旁边的工地), the operator the site (光明人才住房
    项目), and two sites next to one estate are two places."""
    if not places or _NEAR.search(text) is None:  # most texts name no landmark
        return ()
    found = []
    for place in places:
        ends = [match.end() for match in re.finditer(re.escape(place), text)]
        if ends and all(_NEAR.match(text, end) for end in ends):
            found.append(place)
    return tuple(found)


def said_numbers(text: str) -> list[str]:
    """The road-and-number pairs a text gives, numbers as digits however written (华夏路八十八号 is
    华夏路88)."""
    found = []
    for road, number in _SAID_NUMBER.findall(text):
        value = number if number.isdigit() else chinese_number(number)
        if value:
            found.append(f"{road}{int(value)}")
    return found


def crossings(text: str) -> tuple[str, ...]:
    """The crossings a text names, each as its two roads' keys (光明大道与华夏路 = 华夏路和光明大道)."""
    if "口" not in text and "交" not in text:  # every crossing's word has one (most texts name none)
        return ()
    found = ("|".join(sorted(place_keys(first) | place_keys(second)))
             for first, second in _CROSSING.findall(text))
    return tuple(dict.fromkeys(found))


def address_numbers(address: str) -> list[str]:
    """``<road><number>`` of a normalised address (光明区华夏路88号 → 华夏路88), the district cut off."""
    return [f"{road}{number}" for road, number in _NUMBERED.findall(_BEFORE_ROAD.sub("", address))]


def boilerplate() -> frozenset[str]:
    """The bigrams of the channels' forms (来电人称, 区长您好 …): common to unrelated appeals."""
    return _words().boilerplate

"""The 民声云 matcher: does a new case report the same incident as an existing cluster, and why.

Same incident = the same specific place *and* the same specific problem (DESIGN.md "Deduplication").
A case is reduced once to a :class:`Signature` (CPU only): its place evidence — community, street,
coordinates, the address's road and number, the named places its text mentions (estates, roads,
markets, companies, schools …, found by their generic suffixes, so no gazetteer is needed; a typo
that swaps two characters, 东能华府 / 能东华府, or puts a homophone in, 锦绣 / 锦秀, still matches) — its
problem evidence — the categories of
its channel label and of its text alone, and the character bigrams of its words (simplified, with the
place names and the channels' boilerplate taken out) — and its residents' keyed identity hashes.

Retrieval is by *blocking keys* (:meth:`Signature.blocks`): the community, each named place and
address, each of those with a building the text names, and each resident; the cluster store keeps,
per key, a sorted set of clusters by the time of their last report and reads only the few nearest in
time of each (:data:`BLOCK_FETCH`), so the work per new case does not grow with the store.
:func:`compare` scores one pair of signatures into :class:`Signals`; the signals are combined by
:func:`decide`, precision first: a *different* place vetoes any merge, and the problem must agree in
words, not only in category.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from casework.facts import Facts, chinese_number, conflict, facts
from casework.model import RegionLevel, StoredCase
from casework.text import normalise, runs, sounds
from connectors import Place

if TYPE_CHECKING:
    from casework.reference import Reference

__all__ = ["BLOCK_FETCH", "Decision", "Signals", "Signature", "Thresholds", "compare", "decide", "match",
           "oldest_candidate", "place_keys", "signature"]

BLOCK_FETCH = 12
"""Clusters read per blocking key on each side of the new case's time: bounds the work per case."""

MAX_GRAMS = 160
WORDS_FILE = Path(__file__).parent / "data" / "dedup_words.yaml"
_NUMBERED = re.compile(r"^([\u4e00-\u9fff]{1,6}?(?:大道|大街|路|街))(\d+)号")
_BEFORE_ROAD = re.compile(r"^.*(?:街道|社区|[区市县镇])")
_SAID_NUMBER = re.compile(r"([\u4e00-\u9fff]{2,8}?(?:大道|大街|路|街))"
                          r"(\d{1,5}|[一二三四五六七八九十百零]{1,6})号")
"""A house number a text gives on a road (华夏路88号): a post without an address field gives it in words."""
_ROAD = r"[\u4e00-\u9fff]{2,6}?(?:大道|大街|公路|路|街)"
_CROSSING = re.compile(rf"({_ROAD})(?:与|和|跟|同)({_ROAD})(?:交叉|十字|路口|交汇|交界|交口)")
"""Two roads' crossing (光明大道与华夏路交汇处): on a long road, the spot."""
_ROAD_NUMBER = re.compile(r"(.+?)(\d+)")
_PAIRS = re.compile(r"..?", re.DOTALL)
"""A stored gram string cut back into its bigrams (in C: parsing candidates' signatures is hot)."""
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


@dataclass(frozen=True, slots=True)
class Signature:
    """What the matcher knows of one case; stored with its cluster, so candidates need no case reads."""

    key: str
    at: float                                  # received time, epoch seconds
    channel: str
    community: str | None                      # community-level region id (a grid's community)
    street: str | None
    categories: tuple[str, ...]                # label category and text-only category (ids), distinct
    places: tuple[str, ...]                    # named places, normalised, admin prefixes dropped
    numbered: tuple[str, ...]                  # "<road><number>" from the address
    who: tuple[str, ...]                       # residents' identity hashes
    lat: float | None
    lng: float | None
    grams: frozenset[str] = field(default_factory=frozenset)
    facts: Facts = field(default_factory=Facts)  # amounts, buildings/rooms, months, head counts
    said: tuple[str, ...] = ()                 # "<road><number>" the text gives (华夏路88号)
    crossings: tuple[str, ...] = ()            # "<road key>|<road key>" of the crossings it names
    # the keys of ``places``, and each road's house numbers (address and text), worked out once: the
    # matcher compares them for some thirty pairs a case
    keys_of_places: frozenset[str] = field(init=False, repr=False, compare=False)
    road_numbers: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys_of_places", _place_keys_of(self.places))
        object.__setattr__(self, "road_numbers", _road_numbers((*self.numbered, *self.said)))

    def blocks(self) -> list[str]:
        """The blocking keys this case is filed under and looked up by: its places, each place with each
        building the text names, and its residents.

        A place's own key holds every cluster reported there, and retrieval reads only the
        :data:`BLOCK_FETCH` nearest in time; a place with more incidents open at once than that (an
        estate's buildings reporting an outage in the same hour, each building its own incident to
        :func:`~casework.facts.conflict`) pushed a report's own cluster out of reach, and every report
        missed started one more cluster. ``<place>#<building>`` holds only the clusters of that building
        there, as the veto tells them apart.
        """
        places = [f"rg:{self.community}"] if self.community else []
        places += [f"pl:{key}" for p in self.places for key in sorted(place_keys(p))]
        places += [f"ad:{n}" for n in self.numbered]
        # the buildings the text names (a room alone, /1203, names none)
        buildings = dict.fromkeys(b for b in (_building_of(fact) for fact in self.facts.buildings) if b)
        found = [*places, *(f"{p}#{b}" for p in places for b in buildings)]
        found += [f"who:{w}" for w in self.who]
        return list(dict.fromkeys(found))

    def dump(self) -> dict[str, Any]:
        return {"k": self.key, "t": self.at, "ch": self.channel, "cm": self.community, "st": self.street,
                "ct": list(self.categories), "pl": list(self.places), "ad": list(self.numbered),
                "who": list(self.who), "lat": self.lat, "lng": self.lng, "g": "".join(sorted(self.grams)),
                "fx": self.facts.dump(), **({"sd": list(self.said)} if self.said else {}),
                **({"x": list(self.crossings)} if self.crossings else {})}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Signature:
        grams = data.get("g", "")
        return cls(key=data["k"], at=float(data["t"]), channel=data["ch"], community=data.get("cm"),
                   street=data.get("st"), categories=tuple(data.get("ct", ())),
                   places=tuple(data.get("pl", ())),
                   numbered=tuple(data.get("ad", ())), who=tuple(data.get("who", ())), lat=data.get("lat"),
                   lng=data.get("lng"), grams=frozenset(_PAIRS.findall(grams)),
                   facts=Facts.load(data.get("fx")), said=tuple(data.get("sd", ())),
                   crossings=tuple(data.get("x", ())))


def _building_of(fact: str) -> str:
    """The building of a building fact (5:2/501 is building 5, unit 2, room 501): what a block is filed by,
    as a report that gives no unit is in one of them."""
    return fact.partition("/")[0].partition(":")[0]


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
def _place_keys_of(places: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*(place_keys(p) for p in places))


@functools.lru_cache(maxsize=1 << 14)
def _place_sounds_of(places: tuple[str, ...]) -> frozenset[str]:
    """The places' keys by sound: each key character by each of its toneless readings (锦绣花园 and
    锦秀花园 agree: a pinyin input method put the wrong 秀 in one report). Not a company's: companies'
    brands are made of a few lucky characters that sound alike (鑫联 / 信联 / 新联, 兴誉 / 星誉), and two
    wage claims against two of them read alike; a typo there must not merge them."""
    found: set[str] = set()
    for key in _place_keys_of(places):
        kind, _, chars = key.partition(":")
        if kind != "company":
            found.update(f"{kind}:{'+'.join(sorted(pair))}"
                         for pair in itertools.product(*(sounds(char) for char in chars)))
    return frozenset(found)


@functools.lru_cache(maxsize=1 << 14)
def _road_numbers(addresses: tuple[str, ...]) -> Mapping[str, frozenset[str]]:
    """Each road's key (:func:`place_keys`: 在华夏路 is 华夏路) with the house numbers given on it."""
    found: dict[str, set[str]] = {}
    for address in addresses:
        if (parts := _ROAD_NUMBER.fullmatch(address)) is not None:
            road, number = parts.groups()
            for key in place_keys(road):
                found.setdefault(key, set()).add(number)
    return {key: frozenset(numbers) for key, numbers in found.items()}


@functools.lru_cache(maxsize=1 << 16)
def _distinctive(stem: str) -> str:
    """``stem`` without the generic words it ends with (红星道路改造 → 红星), unless nothing would be left."""
    generic = _words().generic
    while True:
        ending = next((g for g in generic if stem.endswith(g) and len(stem) - len(g) >= 2), None)
        if ending is None:
            return stem
        stem = stem[: -len(ending)]


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


def signature(case: StoredCase, reference: Reference, who: Iterable[str]) -> Signature:
    """The case's signature (place, problem, residents); ``who`` are its appellants' identity hashes."""
    region_id = case.region_id
    if region_id is None:  # free text only (a message board): the community or street its words name
        region_id = reference.resolve_place(Place(community=f"{case.title} {case.content}"[:500]))
    community, street = _regions(region_id, reference)
    address = normalise(case.address)
    text = f"{case.title}，{case.content}"
    plain = normalise(text)
    places = named_places(address.rsplit("号", 1)[-1]) if address else []
    places += named_places(text)
    numbered = [f"{road}{number}" for road, number in _NUMBERED.findall(_BEFORE_ROAD.sub("", address))]
    said = _said_numbers(plain) if "号" in plain else []
    categories = [c for c in (case.category_id, reference.classify(None, case.title, case.content)) if c]
    return Signature(key=case.key, at=case.received_at.timestamp(), channel=case.channel, community=community,
                     street=street, categories=tuple(dict.fromkeys(categories)),
                     places=tuple(dict.fromkeys(places))[:8], numbered=tuple(dict.fromkeys(numbered)),
                     who=tuple(sorted(set(who))), lat=case.lat, lng=case.lng,
                     grams=_problem_grams(text, places), facts=facts(plain),
                     said=tuple(dict.fromkeys(said)), crossings=_crossings(plain))


def _crossings(text: str) -> tuple[str, ...]:
    """The crossings a text names, each as its two roads' keys (光明大道与华夏路 = 华夏路和光明大道)."""
    if "口" not in text and "交" not in text:  # every crossing's word has one (most texts name none)
        return ()
    found = ("|".join(sorted(place_keys(first) | place_keys(second)))
             for first, second in _CROSSING.findall(text))
    return tuple(dict.fromkeys(found))


def _said_numbers(text: str) -> list[str]:
    """The road-and-number pairs a text gives, numbers as digits however written (华夏路八十八号 is
    华夏路88)."""
    found = []
    for road, number in _SAID_NUMBER.findall(text):
        value = number if number.isdigit() else chinese_number(number)
        if value:
            found.append(f"{road}{int(value)}")
    return found


def _regions(region_id: str | None, reference: Reference) -> tuple[str | None, str | None]:
    community = street = None
    for region in reference.region_ancestors(region_id) if region_id else []:
        if region.level is RegionLevel.COMMUNITY:
            community = region.id
        elif region.level is RegionLevel.STREET:
            street = region.id
    return community, street


def _problem_grams(text: str, places: Iterable[str]) -> frozenset[str]:
    """Bigrams of the words about the problem: place names and form boilerplate removed."""
    cleaned = " ".join(runs(text))
    for place in sorted(set(places), key=lambda name: (-len(name), name)):
        cleaned = cleaned.replace(place, " ")
    grams = {w[i:i + 2] for w in cleaned.split() for i in range(len(w) - 1)}
    stop = _words().boilerplate
    grams = {g for g in grams if g not in stop and not g.isdigit()}
    return frozenset(sorted(grams)[:MAX_GRAMS])


# -- scoring ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Signals:
    """How a pair of cases compares, each signal in [0, 1] (place also −1: a different place)."""

    text: float
    place: float
    category: float
    resident: float
    days: float
    conflict: bool = False   # the texts state different amounts, buildings or months: a veto

    def as_dict(self) -> dict[str, float]:
        return {"text": round(self.text, 3), "place": round(self.place, 3),
                "category": round(self.category, 3),
                "resident": round(self.resident, 3), "days": round(self.days, 2)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The decision's knobs (tuned on the sandbox's tune split only; see bench/dedup.py)."""

    # Text similarity that merges with a matching place, whatever the categories: an agreeing category
    # alone lowers it no more (it did to 0.40; the same kind of problem at one place a few days apart is
    # the commonest look-alike, and the lower bar cost ~1 wrong pair per pair it found — bench/dedup.py).
    text_alone: float = 0.62
    text_same_resident: float = 0.30  # … when the same resident reports again
    close_days: float = 2.0           # reports this close in time, same place and same category …
    text_close: float = 0.05          # … need only this much text in common (details differ, not the matter)
    recent_days: float = 5.0          # reports further apart need text_old unless the same resident
    text_old: float = 0.9             # … the near-identical words that link reports further apart
    resident_days: float = 14.0       # the same resident, place and category this close: …
    # … need only some word in common: 0.05 asked for more once place names no longer counted as words
    # (tune split, 30 worlds: B-cubed recall 0.9413 → 0.9436, wrong pairs 129 → 130; 0.0: 136)
    text_resident_place: float = 0.02
    max_days: float = 60.0            # reports further apart are never linked automatically


@dataclass(frozen=True, slots=True)
class Decision:
    merge: bool
    score: float
    signals: Signals


def oldest_candidate(at: float, thresholds: Thresholds) -> float:
    """The oldest last report (epoch seconds) of a cluster that can still take a case received at ``at``.

    A cluster whose last report under a blocking key is older than ``max_days`` has no member the
    matcher would link to the case through that key (every member filed there is older still), so
    retrieval skips it rather than read, parse and score it: in a big store the blocks of residents
    and of rare places reach back years (at 100k cases, ~60 % of what residents' blocks held). (A recent
    member filed under none of the case's keys can only match it by coordinates alone; its cluster is
    then found through a key it was reported under lately, or not at all.) A second's slack keeps the
    float boundary on the matcher's side.
    """
    return at - thresholds.max_days * 86400 - 1


def compare(a: Signature, b: Signature, reference: Reference) -> Signals:
    return Signals(text=_text(a.grams, b.grams), place=_place(a, b), category=_category(a, b, reference),
                   resident=1.0 if set(a.who) & set(b.who) else 0.0, days=abs(a.at - b.at) / 86400,
                   conflict=_facts_conflict(a, b, reference))


def decide(signals: Signals, thresholds: Thresholds | None = None) -> Decision:
    """Merge only at the same place with the same problem in words (precision first)."""
    th = thresholds or Thresholds()
    s = signals
    score = 0.5 * s.text + 0.25 * max(s.place, 0.0) + 0.15 * s.category + 0.1 * s.resident
    if s.place <= 0 or s.days > th.max_days or s.conflict:
        return Decision(False, score, s)
    needed = th.text_alone
    if s.resident and s.category >= 0.5:
        needed = min(needed, th.text_same_resident)
    if s.category >= 1.0 and s.place >= 1.0 and s.days <= th.close_days:
        needed = min(needed, th.text_close)
    same_resident_place = s.resident and s.place >= 1.0 and s.category >= 0.5
    if same_resident_place and s.days <= th.resident_days:
        needed = min(needed, th.text_resident_place)
    if s.place < 0.75:  # the same community only: the words must carry more of the weight
        needed += 0.15
    if s.days > th.recent_days and not (same_resident_place and s.days <= th.resident_days):
        needed = max(needed, th.text_old)  # an old report and a new one: only near-identical words
    return Decision(s.text >= needed, score, s)


def match(a: Signature, b: Signature, reference: Reference, thresholds: Thresholds) -> Decision | None:
    """``decide(compare(a, b))`` when it merges, else None — cheaper: the matcher scores some sixty pairs
    per new case and most fail a veto (time, place, conflicting facts), decided before the text and
    category signals are computed."""
    days = abs(a.at - b.at) / 86400
    if days > thresholds.max_days:
        return None
    place = _place(a, b)
    if place <= 0 or _facts_conflict(a, b, reference):
        return None
    signals = Signals(text=_text(a.grams, b.grams), place=place, category=_category(a, b, reference),
                      resident=1.0 if set(a.who) & set(b.who) else 0.0, days=days)
    decision = decide(signals, thresholds)
    return decision if decision.merge else None


def _facts_conflict(a: Signature, b: Signature, reference: Reference) -> bool:
    """The facts veto: the two texts contradict each other — but for an incident that strikes an area
    (a category both share is ``area_wide``: an outage), different buildings or head counts do not."""
    if not conflict(a.facts, b.facts):
        return False
    return not _area_wide(a.categories, b.categories, reference) or conflict(a.facts, b.facts, reach=False)


@functools.lru_cache(maxsize=1 << 12)
def _area_wide(a: tuple[str, ...], b: tuple[str, ...], reference: Reference) -> bool:
    """Whether a category the two signatures share strikes an area (the event dictionary's ``area_wide``)."""
    return any(reference.categories[c].area_wide for c in set(a) & set(b) if c in reference.categories)


def _text(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap of the problem bigrams, relative to the shorter text (paraphrases differ in length)."""
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / math.sqrt(len(a) * len(b)) * 0.5 + common / min(len(a), len(b)) * 0.5


def _place(a: Signature, b: Signature) -> float:
    """1 same named place / address / within ~150 m (unless their addresses differ: neighbours); 0.6 same
    community only; 0 unknown; −1 different."""
    if a.lat is not None and b.lat is not None and a.lng is not None and b.lng is not None:
        metres = _metres(a.lat, a.lng, b.lat, b.lng)
        if metres > 1000:
            return -1.0
        if metres < 150 and _names_agree(a, b) is not False and not _spots_differ(a, b):
            return 1.0
    if a.community and b.community and a.community != b.community:
        return -1.0
    if a.street and b.street and a.street != b.street:
        return -1.0
    names = _names_agree(a, b)
    if names is False:
        return -1.0
    if _spots_differ(a, b):
        return -1.0
    if names is True or (a.numbered and b.numbered):
        return 1.0
    return 0.6 if a.community and a.community == b.community else 0.0


def _spots_differ(a: Signature, b: Signature) -> bool:
    """Two spots along one place: other house numbers (:func:`_numbers_differ`), or other crossings (光明大道
    与华夏路 / 光明大道与龙大路: both name 光明大道, a long road)."""
    if a.crossings and b.crossings and set(a.crossings).isdisjoint(b.crossings):
        return True
    return _numbers_differ(a, b)


def _numbers_differ(a: Signature, b: Signature) -> bool:
    """Both give an address (road and number) and no address of one is the other's; or both give house
    numbers on one road, in their address or their words, and none the same (华夏路88号 / 华夏路96号)."""
    if a.numbered and b.numbered and not set(a.numbered) & set(b.numbered):
        return True
    if not a.road_numbers or not b.road_numbers:
        return False
    return any(a.road_numbers[road].isdisjoint(b.road_numbers[road])
               for road in a.road_numbers.keys() & b.road_numbers.keys())


def _names_agree(a: Signature, b: Signature) -> bool | None:
    """Whether the named places agree: True (one in common, or one that sounds the same: a typo), False
    (both name places, none shared), None."""
    if not a.places or not b.places:
        return None
    if not a.keys_of_places.isdisjoint(b.keys_of_places):
        return True
    return not _place_sounds_of(a.places).isdisjoint(_place_sounds_of(b.places))


def _category(a: Signature, b: Signature, reference: Reference) -> float:
    """1 a shared category; 0.5 a shared third-level parent; 0 otherwise."""
    return _categories_agree(a.categories, b.categories, reference)


@functools.lru_cache(maxsize=1 << 14)
def _categories_agree(a: tuple[str, ...], b: tuple[str, ...], reference: Reference) -> float:
    """:func:`_category` of two signatures' categories. Cached: a case has one or two of a few hundred
    categories, and each new case is scored against some ten candidates that pass the place veto."""
    if set(a) & set(b):
        return 1.0
    parents_a = {_parent(c, reference) for c in a} - {None}
    parents_b = {_parent(c, reference) for c in b} - {None}
    return 0.5 if parents_a & parents_b else 0.0


@functools.lru_cache(maxsize=4096)
def _parent(category_id: str, reference: Reference) -> str | None:
    chain = reference.category_ancestors(category_id)
    return chain[-3].id if len(chain) >= 3 else (chain[0].id if chain else None)


def _metres(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    dlat = math.radians(lat2 - lat1)
    dlng = math.radians(lng2 - lng1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000 * math.hypot(dlat, dlng)

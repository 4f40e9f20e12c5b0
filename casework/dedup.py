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
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auth.rights import is_respondent_role
from casework.facts import Facts, conflict, facts
from casework.model import RegionLevel, StoredCase
from casework.placenames import (
    address_numbers,
    boilerplate,
    crossings,
    keys_of,
    landmarks,
    named_places,
    place_keys,
    road_numbers,
    said_numbers,
    sounds_of,
)
from casework.text import normalise, runs
from connectors import Party, Place

if TYPE_CHECKING:
    from casework.reference import Reference

__all__ = ["BLOCK_FETCH", "Decision", "Signals", "Signature", "Thresholds", "compare", "decide", "match",
           "oldest_candidate", "signature"]

BLOCK_FETCH = 12
"""Clusters read per blocking key on each side of the new case's time: bounds the work per case."""

MAX_GRAMS = 160
_PAIRS = re.compile(r"..?", re.DOTALL)
"""A stored gram string cut back into its bigrams (in C: parsing candidates' signatures is hot)."""


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
    near: tuple[str, ...] = ()                 # those of ``places`` named only as landmarks (…旁边的)
    against: tuple[str, ...] = ()              # the other side: "o:<company key>", "p:<surname>"
    # the keys of ``places``, and each road's house numbers (address and text), worked out once: the
    # matcher compares them for some thirty pairs a case
    keys_of_places: frozenset[str] = field(init=False, repr=False, compare=False)
    road_numbers: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys_of_places", keys_of(self.places))
        object.__setattr__(self, "road_numbers", road_numbers((*self.numbered, *self.said)))

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
        # an address, given in the address field or in the words (华夏路88号门口…): a message-board post
        # without an address field finds the hotline's report of the same doorway
        places += [f"nb:{road}#{number}" for road, numbers in sorted(self.road_numbers.items())
                   for number in sorted(numbers)]
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
                **({"x": list(self.crossings)} if self.crossings else {}),
                **({"nr": list(self.near)} if self.near else {}),
                **({"vs": list(self.against)} if self.against else {})}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Signature:
        grams = data.get("g", "")
        return cls(key=data["k"], at=float(data["t"]), channel=data["ch"], community=data.get("cm"),
                   street=data.get("st"), categories=tuple(data.get("ct", ())),
                   places=tuple(data.get("pl", ())),
                   numbered=tuple(data.get("ad", ())), who=tuple(data.get("who", ())), lat=data.get("lat"),
                   lng=data.get("lng"), grams=frozenset(_PAIRS.findall(grams)),
                   facts=Facts.load(data.get("fx")), said=tuple(data.get("sd", ())),
                   crossings=tuple(data.get("x", ())), near=tuple(data.get("nr", ())),
                   against=tuple(data.get("vs", ())))


def _building_of(fact: str) -> str:
    """The building of a building fact (5:2/501 is building 5, unit 2, room 501): what a block is filed by,
    as a report that gives no unit is in one of them."""
    return fact.partition("/")[0].partition(":")[0]


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
    named = tuple(dict.fromkeys(places))[:8]
    numbered = address_numbers(address)
    said = said_numbers(plain) if "号" in plain else []
    categories = [c for c in (case.category_id, reference.classify(None, case.title, case.content)) if c]
    return Signature(key=case.key, at=case.received_at.timestamp(), channel=case.channel, community=community,
                     street=street, categories=tuple(dict.fromkeys(categories)),
                     places=named, numbered=tuple(dict.fromkeys(numbered)),
                     who=tuple(sorted(set(who))), lat=case.lat, lng=case.lng,
                     grams=_problem_grams(text, named), facts=facts(plain),
                     said=tuple(dict.fromkeys(said)), crossings=crossings(plain),
                     near=landmarks(text, named), against=_other_side(case.parties))


def _other_side(parties: Iterable[Party]) -> tuple[str, ...]:
    """Who a dispute is against, as the channels name them: a company by its name's key (深圳市永源俊光电科技
    有限公司 = 永源俊公司), a person by surname (李四 = 李先生 = 李某: channels mask given names)."""
    found: list[str] = []
    for party in parties:
        name = normalise(party.name) if is_respondent_role(party.role) else ""
        if not name:
            continue
        if party.is_organisation:
            # the brand, whatever the kind a channel gives it (永源俊公司 / 永源俊厂)
            keys = sorted({key.partition(":")[2] for key in keys_of(tuple(named_places(name)))})
            found += [f"o:{key}" for key in keys] or [f"o:{name}"]
        else:
            found.append(f"p:{name[0]}")
    return tuple(dict.fromkeys(found))


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
    stop = boilerplate()
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
                   conflict=_facts_conflict(a, b, reference) or _sides_differ(a, b))


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
    if place <= 0 or _facts_conflict(a, b, reference) or _sides_differ(a, b):
        return None
    signals = Signals(text=_text(a.grams, b.grams), place=place, category=_category(a, b, reference),
                      resident=1.0 if set(a.who) & set(b.who) else 0.0, days=days)
    decision = decide(signals, thresholds)
    return decision if decision.merge else None


def _sides_differ(a: Signature, b: Signature) -> bool:
    """Both name the other side of their dispute, companies or persons, and none is the same: one creditor's
    loans to two debtors, one tenant's disputes with two landlords, are two matters."""
    if not a.against or not b.against:
        return False
    for kind in ("o:", "p:"):
        mine = {x for x in a.against if x.startswith(kind)}
        theirs = {x for x in b.against if x.startswith(kind)}
        if mine and theirs and mine.isdisjoint(theirs):
            return True
    return False


def _facts_conflict(a: Signature, b: Signature, reference: Reference) -> bool:
    """The facts veto: the two texts contradict each other — but for an incident that strikes an area
    (a category both share is ``area_wide``: an outage), different buildings or head counts do not."""
    if not conflict(a.facts, b.facts):
        return False
    if _area_wide(a.categories, b.categories, reference):
        return conflict(a.facts, b.facts, reach=False)
    if _between_floors(a.categories, b.categories, reference):
        return conflict(a.facts, b.facts, floors=True)
    return True


@functools.lru_cache(maxsize=1 << 12)
def _area_wide(a: tuple[str, ...], b: tuple[str, ...], reference: Reference) -> bool:
    """Whether a category the two signatures share strikes an area (the event dictionary's ``area_wide``)."""
    return any(reference.categories[c].area_wide for c in set(a) & set(b) if c in reference.categories)


@functools.lru_cache(maxsize=1 << 12)
def _between_floors(a: tuple[str, ...], b: tuple[str, ...], reference: Reference) -> bool:
    """Whether both are about a matter between flats (``between_floors``: a leak, a neighbour's noise) —
    the categories need not be one: the flat below calls it a leak (房屋漏水), the court a neighbours'
    dispute (相邻漏水纠纷)."""
    def marked(categories: tuple[str, ...]) -> bool:
        return any(c in reference.categories and reference.categories[c].between_floors for c in categories)
    return marked(a) and marked(b)


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
    if names is True or (a.numbered and b.numbered) or _numbers_shared(a, b):
        return 1.0
    return 0.6 if a.community and a.community == b.community else 0.0


def _spots_differ(a: Signature, b: Signature) -> bool:
    """Two spots along one place: other house numbers (:func:`_numbers_differ`), or other crossings (光明大道
    与华夏路 / 光明大道与龙大路: both name 光明大道, a long road)."""
    if a.crossings and b.crossings and set(a.crossings).isdisjoint(b.crossings):
        return True
    return _numbers_differ(a, b)


def _numbers_shared(a: Signature, b: Signature) -> bool:
    """One house number on one road, each from its address or its words (华夏路88号 / 华夏路八十八号门口)."""
    return any(not numbers.isdisjoint(b.road_numbers.get(road, ()))
               for road, numbers in a.road_numbers.items())


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
    (both name places, none shared), None. When both name the place itself, a landmark they share (the
    estate both sites are next to) does not make them agree; one's landmark that is the other's place does
    (玉律农贸市场周边 / 玉律农贸市场出入口)."""
    agree = _agree(a.places, b.places, a.keys_of_places, b.keys_of_places)
    if agree and a.near and b.near:
        own_a = tuple(p for p in a.places if p not in a.near)
        own_b = tuple(p for p in b.places if p not in b.near)
        if own_a and own_b and not _agree(own_a, own_b, keys_of(own_a), keys_of(own_b)):
            return bool(_agree(a.near, own_b, keys_of(a.near), keys_of(own_b))
                        or _agree(own_a, b.near, keys_of(own_a), keys_of(b.near)))
    return agree


def _agree(a: tuple[str, ...], b: tuple[str, ...], keys_a: frozenset[str],
           keys_b: frozenset[str]) -> bool | None:
    if not a or not b:
        return None
    if not keys_a.isdisjoint(keys_b):
        return True
    return not sounds_of(a).isdisjoint(sounds_of(b))


def _category(a: Signature, b: Signature, reference: Reference) -> float:
    """1 a shared category; 0.5 one matter under two classes' names (the event dictionary's
    ``same_matter``: 拖欠工资 / 讨薪法律援助) or a shared third-level parent; 0 otherwise."""
    return _categories_agree(a.categories, b.categories, reference)


@functools.lru_cache(maxsize=1 << 14)
def _categories_agree(a: tuple[str, ...], b: tuple[str, ...], reference: Reference) -> float:
    """:func:`_category` of two signatures' categories. Cached: a case has one or two of a few hundred
    categories, and each new case is scored against some ten candidates that pass the place veto."""
    if set(a) & set(b):
        return 1.0
    if any(set(reference.categories[c].same_matter) & set(b) for c in a if c in reference.categories):
        return 0.5
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

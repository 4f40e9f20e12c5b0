"""Turning what a channel sent into reference ids: places into regions, words into categories.

Both matchers work on normalised text (:func:`casework.text.normalise`: simplified Chinese, no
spaces, NFKC-folded), so traditional characters and full-width forms match like their twins.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from casework.model import RegionLevel
from casework.text import normalise
from connectors import Place

if TYPE_CHECKING:
    from casework.reference import Reference

__all__ = ["Classifier", "PlaceMatcher"]

NEAREST_COMMUNITY_KM = 3.0
_SUFFIXES = {RegionLevel.DISTRICT: ("区",), RegionLevel.STREET: ("街道办事处", "街道办", "街道"),
             RegionLevel.COMMUNITY: ("社区居委会", "社区工作站", "社区"), RegionLevel.GRID: ()}
_ORDINAL = re.compile(r"第?([一二三四五六七八九十\d]+)网格")
_DIGITS = dict(zip("123456789", "一二三四五六七八九", strict=True))


def _short(name: str, level: RegionLevel) -> str | None:
    for suffix in _SUFFIXES[level]:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


class PlaceMatcher:
    """Finds the most specific region a :class:`~connectors.Place` names."""

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self._full: dict[RegionLevel, dict[str, list[str]]] = {level: {} for level in RegionLevel}
        self._short: dict[RegionLevel, dict[str, list[str]]] = {level: {} for level in RegionLevel}
        for region in reference.regions.values():
            name = normalise(region.name)
            self._full[region.level].setdefault(name, []).append(region.id)
            short = _short(name, region.level)
            if short:
                self._short[region.level].setdefault(short, []).append(region.id)
        # Longest names first, so 李松蓢社区 is tried before anything it contains.
        self._full_sorted = {level: sorted(names, key=len, reverse=True)
                             for level, names in self._full.items()}
        self._short_sorted = {level: sorted(names, key=len, reverse=True)
                              for level, names in self._short.items()}
        # Names of one length in a fixed order, not a set's (which changes with the process's hash seed):
        # two that overlap in a text (光明街道 and 道口网格 in 光明街道口网格) leave different text when
        # blanked out in a different order.
        self._all_full = sorted({n for names in self._full.values() for n in names},
                                key=lambda name: (-len(name), name))

    def resolve(self, place: Place) -> str | None:
        fields = {name: normalise(getattr(place, name)) for name in
                  ("district", "street", "community", "grid", "address")}
        streets = self._first(RegionLevel.STREET, fields, ("street", "community", "grid", "address"),
                              designated=("street",))
        communities = self._first(RegionLevel.COMMUNITY, fields, ("community", "grid", "street", "address"),
                                  designated=("community",))
        communities = self._within(communities, streets)
        community = communities[0] if communities else None
        grid = self._grid(fields, community)
        if grid is not None:
            return grid
        if community is not None:
            return community
        near = self._nearest(place.lat, place.lng, streets)
        if near is not None:
            return near
        if streets:
            return streets[0]
        return self._district(fields)

    def _first(self, level: RegionLevel, fields: dict[str, str], order: Sequence[str],
               designated: Sequence[str]) -> list[str]:
        for name in order:
            found = self._find(level, fields[name], allow_short=name in designated)
            if found:
                return found
        return []

    def _find(self, level: RegionLevel, text: str, *, allow_short: bool) -> list[str]:
        if not text:
            return []
        if text in self._full[level]:
            return list(self._full[level][text])
        if allow_short and text in self._short[level]:
            return list(self._short[level][text])
        hits = [rid for name in self._full_sorted[level] if name in text for rid in self._full[level][name]]
        if hits or not allow_short:
            return hits
        # A short name inside surrounding text: first blank out every full name of any level, so the
        # 光明 of 光明区 is not read as 光明社区.
        for name in self._all_full:
            text = text.replace(name, "|")
        return [rid for name in self._short_sorted[level] if name in text for rid in self._short[level][name]]

    def _within(self, candidates: list[str], parents: list[str]) -> list[str]:
        if not parents or len(candidates) <= 1:
            return candidates
        inside = [c for c in candidates if self.reference.regions[c].parent_id in parents]
        return inside or candidates

    def _grid(self, fields: dict[str, str], community: str | None) -> str | None:
        grids = self._first(RegionLevel.GRID, fields, ("grid", "address", "community"), designated=())
        if community is not None:
            grids = [g for g in grids if self.reference.regions[g].parent_id == community]
        if grids:
            return grids[0]
        match = _ORDINAL.search(fields["grid"]) if community is not None else None
        if match is None or community is None:
            return None
        ordinal = "".join(_DIGITS.get(ch, ch) for ch in match.group(1).lstrip("0"))
        for child in self.reference.region_children(community):
            if child.level is RegionLevel.GRID and child.name.endswith(f"第{ordinal}网格"):
                return child.id
        return None

    def _nearest(self, lat: float | None, lng: float | None, streets: list[str]) -> str | None:
        if lat is None or lng is None:
            return None
        best: tuple[float, str] | None = None
        for region in self.reference.regions.values():
            if region.level is not RegionLevel.COMMUNITY or region.lat is None or region.lng is None:
                continue
            if streets and region.parent_id not in streets:
                continue
            distance = _km(lat, lng, region.lat, region.lng)
            if distance <= NEAREST_COMMUNITY_KM and (best is None or distance < best[0]):
                best = (distance, region.id)
        return None if best is None else best[1]

    def _district(self, fields: dict[str, str]) -> str | None:
        districts = self._full[RegionLevel.DISTRICT]
        for name in ("district", "street", "community", "grid", "address"):
            text = fields[name]
            for full, ids in districts.items():
                if full in text:
                    return ids[0]
            if name == "district" and text in self._short[RegionLevel.DISTRICT]:
                return self._short[RegionLevel.DISTRICT][text][0]
        return None


def _km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


BROAD_LEVEL = 2
"""Words of the top classes and their children (投诉建议, 住房建设, 劳动纠纷 …): a field, not a problem."""
_SEPARATORS = re.compile(r"[/／>＞|｜\\·→-]+")
MIN_SCORE = 2.0


def _index_by_first_character(keywords: dict[str, tuple[str, ...]]
                              ) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """first character → [(keyword, the categories that list it)]."""
    categories_of: dict[str, list[str]] = {}
    for cid, words in keywords.items():
        for word in words:
            categories_of.setdefault(word, []).append(cid)
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for word, cids in sorted(categories_of.items()):
        index.setdefault(word[0], []).append((word, tuple(cids)))
    return index


class Classifier:
    """Picks the most specific event-dictionary category for a hint and a text.

    A leaf's score is the sum, over its path from the top class down, of the lengths of the keywords
    (names included) found in the text — doubled when found in the title. The best leaf wins; leaves
    tied for best give way to their deepest common ancestor.
    """

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self._by_name: dict[str, list[str]] = {}
        self._keywords: dict[str, tuple[str, ...]] = {}
        order = list(reference.categories)
        self._order = {cid: index for index, cid in enumerate(order)}
        for category in reference.categories.values():
            name = normalise(category.name)
            self._by_name.setdefault(name, []).append(category.id)
            words = {name, *(normalise(k) for k in category.keywords)}
            self._keywords[category.id] = tuple(sorted(w for w in words if w))
        self._by_first = _index_by_first_character(self._keywords)
        self._leaves = [cid for cid in order if not reference.category_children(cid)]
        self._paths = {cid: [c.id for c in reference.category_ancestors(cid)] for cid in order}
        self._leaves_under: dict[str, list[str]] = {}  # each category's leaves, dictionary order
        for leaf in self._leaves:
            for cid in self._paths[leaf]:
                self._leaves_under.setdefault(cid, []).append(leaf)
        # Ingest classifies a case with its channel's label, the dedup signature right after without it:
        # both read the same text, and hints repeat; scoring every keyword is most of the work.
        self._hits = functools.lru_cache(maxsize=512)(self._keyword_hits)

    def classify(self, hint: str | None, title: str, content: str) -> str | None:
        title_n, content_n = normalise(title), normalise(content)
        hits = self._hits(title_n, content_n)
        hint_n = normalise(hint)
        if hint_n:
            found = self._from_hint(hint_n, hits)
            if found is not None:
                return self._refine(found, hits)
        return self._best(hits, below=None)

    def _keyword_hits(self, title: str, content: str) -> dict[str, float]:
        """Per category: the weight of its own keywords found in the text (never changed by a caller).

        Only the keywords that start with a character of the text can be in it: looking those up by
        their first character tests a few dozen words per case instead of every word of the dictionary.
        """
        hits: dict[str, float] = {}
        for first in set(title) | set(content):
            for word, categories in self._by_first.get(first, ()):
                in_title = word in title
                if in_title or word in content:
                    weight = len(word) * (2.0 if in_title else 1.0)
                    for cid in categories:
                        hits[cid] = hits.get(cid, 0.0) + weight
        return hits

    def _from_hint(self, hint: str, text_hits: dict[str, float]) -> str | None:
        if hint in self.reference.categories:
            return hint
        segments = [s for s in _SEPARATORS.split(hint) if s]
        for index in range(len(segments) - 1, -1, -1):
            candidates = self._by_name.get(segments[index])
            if candidates:
                return self._pick_named(candidates, segments[:index], text_hits)
        hint_hits = self._hits(hint, "")
        return self._best(hint_hits, below=None, tie_hits=text_hits)

    def _pick_named(self, candidates: list[str], context: list[str], text_hits: dict[str, float]) -> str:
        if len(candidates) == 1:  # most names are one category's: nothing to rank
            return candidates[0]
        scores = self._leaf_scores(text_hits, below=None)

        def rank(cid: str) -> tuple[int, int, float, int]:
            names = {self.reference.categories[a].name for a in self._paths[cid][1:]}
            overlap = sum(1 for segment in context if segment in names)
            subtree = max((scores.get(leaf, 0.0) for leaf in self._leaves_under.get(cid, ())), default=0.0)
            return (overlap, self.reference.categories[cid].level, subtree, -self._order[cid])
        return max(candidates, key=rank)

    def _leaf_scores(self, hits: dict[str, float], *, below: str | None) -> dict[str, float]:
        """Every leaf's score: the hits on its path (only those beneath ``below``, when given), for the
        leaves that have any. Each hit is added to the leaves beneath it, rather than each leaf's path
        read: a text hits a handful of categories, and half the leaves lie beneath one of them. The
        weights are whole numbers, so the sums do not depend on the order they are added in."""
        scores: dict[str, float] = {}
        for cid, weight in hits.items():
            if below is not None and below not in self._paths[cid][1:]:
                continue
            for leaf in self._leaves_under.get(cid, ()):
                scores[leaf] = scores.get(leaf, 0.0) + weight
        return scores

    def _refine(self, found: str, hits: dict[str, float]) -> str:
        if not self.reference.category_children(found):
            return found
        return self._best(hits, below=found, within=self._leaves_under.get(found, [])) or found

    def _best(self, hits: dict[str, float], *, below: str | None, within: Collection[str] | None = None,
              tie_hits: dict[str, float] | None = None) -> str | None:
        """The best-scoring leaf (of ``within``, or of all), or the common ancestor of those tied."""
        # only leaves with a hit on their path can score above 0, and 0 never wins: the rest are left out
        scores = self._leaf_scores(hits, below=below)
        if within is not None:
            scores = {leaf: score for leaf, score in scores.items() if leaf in within}
        top = max(scores.values(), default=0.0)
        if top < (MIN_SCORE if below is None else 1.0):
            return None
        best = sorted((leaf for leaf, score in scores.items() if score == top), key=self._order.__getitem__)
        if len(best) > 1 and tie_hits:
            again = self._best(tie_hits, below=None, within=best)
            if again is not None:
                return again
        return self._common_ancestor(best, hits)

    def _common_ancestor(self, leaves: list[str], hits: dict[str, float]) -> str:
        if len(leaves) == 1:
            return leaves[0]
        shared = set(self._paths[leaves[0]])
        for leaf in leaves[1:]:
            shared &= set(self._paths[leaf])
        if shared:
            narrow = self._narrow(leaves, hits)
            if len(narrow) < len(leaves):
                return self._common_ancestor(narrow, hits)
            return max(shared, key=lambda cid: self.reference.categories[cid].level)
        # Different top classes: the leaf whose own keywords carried most, then dictionary order.
        return max(leaves, key=lambda leaf: (hits.get(leaf, 0.0), -self._order[leaf]))

    def _narrow(self, leaves: list[str], hits: dict[str, float]) -> list[str]:
        """Of leaves of one top class tied on score, those that owe it to more than a broad field's word
        (a word of the top two levels): 小区 (住房建设's) weighs as much as 停电, and 小区停电 is a power
        cut, not the "some complaint" that the tie's common ancestor would make it. When every leaf
        has a narrower word, or none has, all stay."""
        narrow = [leaf for leaf in leaves if any(self.reference.categories[c].level > BROAD_LEVEL
                                                 for c in self._paths[leaf] if c in hits)]
        return narrow or leaves

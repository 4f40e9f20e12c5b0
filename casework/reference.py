"""Reference data: regions, the event dictionary and departments, loaded from files a city can replace.

The default files live in ``casework/data/``:

* ``regions.json`` — a flat list of regions (district → street → community → grid), each with
  ``id``, ``code``, ``name``, ``level``, ``parent_id`` and an approximate centre;
* ``event_dictionary.yaml`` — the four-level event dictionary, nested, with codes and keywords;
* ``departments.yaml`` — the departments cases are dispatched to.

Loading checks every file fully and raises :class:`connectors.ConfigError` listing *every* problem.
:meth:`Reference.resolve_place` and :meth:`Reference.classify` turn what a channel sent (names,
coordinates, its own category word, free text) into region and category ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from casework.matching import Classifier, PlaceMatcher
from casework.model import RegionLevel
from connectors import ConfigError, Place

__all__ = ["DATA_DIR", "Category", "Department", "Reference", "Region"]

DATA_DIR = Path(__file__).with_name("data")
_PARENT_LEVEL = {RegionLevel.STREET: RegionLevel.DISTRICT, RegionLevel.COMMUNITY: RegionLevel.STREET,
                 RegionLevel.GRID: RegionLevel.COMMUNITY}


@dataclass(frozen=True, slots=True)
class Region:
    id: str
    code: str | None
    name: str
    level: RegionLevel
    parent_id: str | None
    lat: float | None
    lng: float | None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    level: int
    parent_id: str | None
    keywords: tuple[str, ...]
    # Its incidents strike an area, not one home: an outage, reported from each building of an estate,
    # is one incident however many buildings the reports name (set on a node, holds for all beneath it).
    area_wide: bool = False
    # A matter between a flat and the one above it (a leak through a ceiling, a neighbour's noise): one
    # side names its own flat, the other side the flat above or below (set on a node, holds beneath it).
    between_floors: bool = False
    # The same matter under another class's name, both ways (the loader makes every link mutual): a legal
    # aid application for unpaid wages (讨薪法律援助) is the wage dispute (拖欠工资) it is brought for.
    same_matter: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: str
    short_name: str
    kind: str                                   # district_bureau, municipal_branch, street_office, court …
    categories: tuple[str, ...] = ()            # event-dictionary codes it is usually responsible for
    region_id: str | None = None                # the street a street office governs


class Reference:
    """The loaded reference data, with the trees and matchers built once.

    ``fingerprint`` identifies the data's content; the store folds it into each case's digest.
    """

    def __init__(self, regions: Mapping[str, Region], categories: Mapping[str, Category],
                 departments: Mapping[str, Department]) -> None:
        self.regions: Mapping[str, Region] = dict(regions)
        self.categories: Mapping[str, Category] = dict(categories)
        self.departments: Mapping[str, Department] = dict(departments)
        self._region_children = _children(self.regions.values())
        self._category_children = _children(self.categories.values())
        self._places = PlaceMatcher(self)
        self._classifier = Classifier(self)
        self.fingerprint = _fingerprint(self)


    @classmethod
    def load(cls, *, regions_path: Path | None = None, categories_path: Path | None = None,
             departments_path: Path | None = None) -> Reference:
        """Load the three files (the packaged defaults for any path not given).

        Raises:
            ConfigError: a file is missing or malformed; lists every problem found.
        """
        problems: list[str] = []
        regions = _load_regions(regions_path or DATA_DIR / "regions.json", problems)
        categories = _load_categories(categories_path or DATA_DIR / "event_dictionary.yaml", problems)
        departments = _load_departments(departments_path or DATA_DIR / "departments.yaml",
                                        regions, categories, problems)
        if problems:
            raise ConfigError(problems)
        return cls(regions, categories, departments)

    # -- regions ------------------------------------------------------------------------------

    def region_children(self, parent_id: str | None) -> list[Region]:
        """The regions directly under ``parent_id``; the districts when ``None``."""
        return [self.regions[rid] for rid in self._region_children.get(parent_id, ())]

    def region_ancestors(self, region_id: str) -> list[Region]:
        """The region itself first, then its parent, … up to the district ([] when unknown)."""
        chain: list[Region] = []
        current = self.regions.get(region_id)
        while current is not None and len(chain) <= len(self.regions):
            chain.append(current)
            current = self.regions.get(current.parent_id) if current.parent_id else None
        return chain

    def region_descendant_ids(self, region_id: str) -> set[str]:
        """The region and everything beneath it ({} when unknown)."""
        return _descendants(region_id, self.regions, self._region_children)

    # -- the event dictionary ------------------------------------------------------------------

    def category_children(self, parent_id: str | None) -> list[Category]:
        """The categories directly under ``parent_id``; the five top classes when ``None``."""
        return [self.categories[cid] for cid in self._category_children.get(parent_id, ())]

    def category_ancestors(self, category_id: str) -> list[Category]:
        """The category itself first, up to its top class ([] when unknown)."""
        chain: list[Category] = []
        current = self.categories.get(category_id)
        while current is not None and len(chain) <= len(self.categories):
            chain.append(current)
            current = self.categories.get(current.parent_id) if current.parent_id else None
        return chain

    def category_descendant_ids(self, category_id: str) -> set[str]:
        """The category and everything beneath it ({} when unknown)."""
        return _descendants(category_id, self.categories, self._category_children)

    def category_path(self, category_id: str) -> str:
        """Names from the top class down, joined by '/' (e.g. 投诉建议/城市管理/市容环境/占道经营)."""
        return "/".join(c.name for c in reversed(self.category_ancestors(category_id)))

    # -- matching ------------------------------------------------------------------------------

    def resolve_place(self, place: Place) -> str | None:
        """The most specific region id the place names, or ``None``.

        Names win over coordinates: grid, community (which implies its street) and street names are
        looked for in the place's fields (suffixes 街道/社区 may be missing, text may surround them)
        and full names in the address. With coordinates only, the nearest community centre within
        ~3 km. The district only as a last resort, when the text names it.
        """
        return self._places.resolve(place)

    def classify(self, hint: str | None, title: str, content: str) -> str | None:
        """The most specific category id for a channel's category word and the text, or ``None``.

        In order: the hint as a code or an exact name (any level, leaves preferred; a path like
        ``城市管理/市容环境/占道经营`` too), then the hint against keywords, then keyword scoring
        over title and content. A match above leaf level is refined by the text when it can be.
        Traditional characters are read as simplified.
        """
        return self._classifier.classify(hint, title, content)


def _fingerprint(reference: Reference) -> str:
    """Changes whenever the data does: stored cases resolved under other data are re-resolved on ingest."""
    body = repr([[astuple(v) for v in table.values()]
                 for table in (reference.regions, reference.categories, reference.departments)])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _children(nodes: Any) -> dict[str | None, list[str]]:
    children: dict[str | None, list[str]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node.id)
    return children


def _descendants(root: str, nodes: Mapping[str, Any], children: Mapping[str | None, list[str]]) -> set[str]:
    if root not in nodes:
        return set()
    found, stack = set(), [root]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children.get(current, ()))
    return found


# -- loading ------------------------------------------------------------------------------------

def _read(path: Path, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc})")
        return None


def _load_regions(path: Path, problems: list[str]) -> dict[str, Region]:
    data = _read(path, problems)
    items = data.get("regions") if isinstance(data, dict) else None
    if data is not None and not isinstance(items, list):
        problems.append(f"{path}: expected an object with a 'regions' list")
    regions: dict[str, Region] = {}
    for index, item in enumerate(items or []):
        region = _region(item, f"{path.name}: regions[{index}]", problems)
        if region is None:
            continue
        if region.id in regions:
            problems.append(f"{path.name}: duplicate region id {region.id!r}")
        regions[region.id] = region
    for region in regions.values():
        _check_region_parent(region, regions, path.name, problems)
    return regions


def _region(item: Any, where: str, problems: list[str]) -> Region | None:
    if not isinstance(item, dict) or not item.get("id") or not item.get("name"):
        problems.append(f"{where}: needs at least 'id' and 'name'")
        return None
    try:
        level = RegionLevel(str(item.get("level", "")).upper())
    except ValueError:
        problems.append(f"{where} ({item['id']}): level {item.get('level')!r} is not one of "
                        f"{', '.join(RegionLevel)}")
        return None
    lat, lng = item.get("lat"), item.get("lng")
    numbers = all(isinstance(v, int | float) for v in (lat, lng) if v is not None)
    if (lat is None) != (lng is None) or not numbers:
        problems.append(f"{where} ({item['id']}): lat and lng must both be numbers, or both null")
        lat = lng = None
    parent = item.get("parent_id")
    return Region(id=str(item["id"]), code=None if item.get("code") is None else str(item["code"]),
                  name=str(item["name"]), level=level, parent_id=None if parent is None else str(parent),
                  lat=None if lat is None else float(lat), lng=None if lng is None else float(lng))


def _check_region_parent(region: Region, regions: Mapping[str, Region], name: str,
                         problems: list[str]) -> None:
    if region.parent_id is None:
        if region.level is not RegionLevel.DISTRICT:
            problems.append(f"{name}: {region.id} ({region.name}) has no parent but is not a district")
        return
    parent = regions.get(region.parent_id)
    if parent is None:
        problems.append(f"{name}: {region.id} ({region.name}) has unknown parent {region.parent_id!r}")
    elif _PARENT_LEVEL.get(region.level) is not parent.level:
        problems.append(f"{name}: {region.id} ({region.name}) is a {region.level} under a {parent.level}")


def _load_categories(path: Path, problems: list[str]) -> dict[str, Category]:
    data = _read(path, problems)
    classes = data.get("classes") if isinstance(data, dict) else None
    if data is not None and not isinstance(classes, list):
        problems.append(f"{path}: expected a mapping with a 'classes' list")
    categories: dict[str, Category] = {}
    _add_categories(classes or [], None, 1, categories, f"{path.name}: classes", problems)
    return _mutual_links(categories, path.name, problems)


def _mutual_links(categories: dict[str, Category], where: str, problems: list[str]) -> dict[str, Category]:
    """Each ``same_matter`` link written on one side, held by both; a link to an unknown code is a problem."""
    linked: dict[str, set[str]] = {code: set() for code in categories}
    for category in categories.values():
        for other in category.same_matter:
            if other not in categories:
                problems.append(f"{where}: {category.id} ({category.name}): same_matter names unknown code "
                                f"{other!r}")
            elif other != category.id:
                linked[category.id].add(other)
                linked[other].add(category.id)
    return {code: replace(category, same_matter=tuple(sorted(linked[code])))
            for code, category in categories.items()}


_FLAGS = ("area_wide", "between_floors")
"""The event dictionary's true/false marks; each set on a node holds for everything beneath it."""


def _add_categories(items: list[Any], parent: str | None, level: int, out: dict[str, Category],
                    where: str, problems: list[str], inherited: Mapping[str, bool] | None = None) -> None:
    names: set[str] = set()
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, dict) or not item.get("name") or not item.get("code"):
            problems.append(f"{here}: needs 'code' and 'name'")
            continue
        code, name = str(item["code"]), str(item["name"])
        if len(code) != 2 * level or not code.isdigit() or not code.startswith(parent or ""):
            problems.append(f"{here} ({name}): code {code!r} must be {parent or ''} + two digits")
        if code in out:
            problems.append(f"{here} ({name}): duplicate code {code!r}")
        if name in names:
            problems.append(f"{here}: duplicate name {name!r} under {parent or 'the top'}")
        names.add(name)
        keywords = item.get("keywords") or []
        if not isinstance(keywords, list):
            problems.append(f"{here} ({name}): keywords must be a list")
            keywords = []
        marked = _flags(item, inherited or {}, f"{here} ({name})", problems)
        same_matter = item.get("same_matter") or []
        if not isinstance(same_matter, list):
            problems.append(f"{here} ({name}): same_matter must be a list of codes")
            same_matter = []
        out[code] = Category(id=code, name=name, level=level, parent_id=parent,
                             keywords=tuple(str(k) for k in keywords if str(k).strip()),
                             area_wide=marked["area_wide"], between_floors=marked["between_floors"],
                             same_matter=tuple(str(c) for c in same_matter))
        children = item.get("children") or []
        if children and level >= 4:
            problems.append(f"{here} ({name}): the dictionary has four levels; this node has children")
        elif isinstance(children, list):
            _add_categories(children, code, level + 1, out, f"{here}.children", problems, marked)


def _flags(item: Mapping[str, Any], inherited: Mapping[str, bool], here: str,
           problems: list[str]) -> dict[str, bool]:
    """The node's marks: its own, or its parent's."""
    flags = {}
    for flag in _FLAGS:
        own = item.get(flag, False)
        if not isinstance(own, bool):
            problems.append(f"{here}: {flag} must be true or false, not {own!r}")
            own = False
        flags[flag] = inherited.get(flag, False) or own
    return flags


def _load_departments(path: Path, regions: Mapping[str, Region], categories: Mapping[str, Category],
                      problems: list[str]) -> dict[str, Department]:
    data = _read(path, problems)
    items = data.get("departments") if isinstance(data, dict) else None
    if data is not None and not isinstance(items, list):
        problems.append(f"{path}: expected a mapping with a 'departments' list")
    departments: dict[str, Department] = {}
    for index, item in enumerate(items or []):
        here = f"{path.name}: departments[{index}]"
        if not isinstance(item, dict) or not all(item.get(k) for k in ("id", "name", "kind")):
            problems.append(f"{here}: needs 'id', 'name' and 'kind'")
            continue
        codes = tuple(str(c) for c in item.get("categories") or [])
        problems.extend(f"{here} ({item['id']}): unknown category {c!r}" for c in codes
                        if categories and c not in categories)
        region_id = item.get("region_id")
        if region_id is not None and regions and str(region_id) not in regions:
            problems.append(f"{here} ({item['id']}): unknown region {region_id!r}")
        if item["id"] in departments:
            problems.append(f"{here}: duplicate id {item['id']!r}")
        departments[str(item["id"])] = Department(
            id=str(item["id"]), name=str(item["name"]),
            short_name=str(item.get("short_name") or item["name"]), kind=str(item["kind"]),
            categories=codes, region_id=None if region_id is None else str(region_id))
    return departments

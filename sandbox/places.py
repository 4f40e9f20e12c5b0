"""光明区's streets and communities, and the named places the sandbox invents in each of them.

The streets, their official codes, approximate centroids and communities are copied from the project's
reference data (``shared/data/guangming-regions.json``); everything below a community — estates, old
villages, roads, markets, construction sites, restaurants, entertainment venues, prepaid-card shops,
companies, schools, river sections — is invented, placed within ~1.5 km of the street centroid (each
community gets its own sub-centroid). Company and shop names are fictional on purpose: the demo accuses
them of things.

Every place carries an evaluation ``split`` ("tune" or ``"holdout"``, ~25%): incidents at holdout places
form the held-out set the deduplication is measured on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["DISTRICT", "STREETS", "Place", "Street", "build_gazetteer"]

DISTRICT = ("440311", "光明区")
HOLDOUT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class Street:
    code: str
    name: str
    lat: float
    lng: float
    communities: tuple[str, ...]
    roads: tuple[str, ...]   # roads of this street (real or plausible names)
    river: str               # the river or drain that crosses it


STREETS: tuple[Street, ...] = (
    Street("440311001", "光明街道", 22.774, 113.935,
           ("光明社区", "东周社区", "碧眼社区", "翠湖社区", "迳口社区", "白花社区"),
           ("光明大道", "华夏路", "河心路", "光明大街", "东周路", "碧眼路", "观光路"), "木墩河"),
    Street("440311002", "公明街道", 22.780, 113.890,
           ("公明社区", "上村社区", "下村社区", "西田社区", "李松蓢社区"),
           ("公明南环大道", "松白路", "民生大道", "长春路", "振明路", "上村路"), "鹅颈水"),
    Street("440311003", "新湖街道", 22.770, 113.915,
           ("楼村社区", "新羌社区", "圳美社区"),
           ("新湖路", "楼村路", "光侨路", "圳美路", "华夏路"), "楼村水"),
    Street("440311004", "凤凰街道", 22.748, 113.935,
           ("凤凰社区", "东坑社区", "塘尾社区", "甲子塘社区", "塘家社区"),
           ("光侨路", "凤凰大道", "东长路", "塘家路", "科裕路"), "东坑水"),
    Street("440311005", "玉塘街道", 22.715, 113.925,
           ("玉律社区", "田寮社区", "长圳社区", "红星社区"),
           ("玉律路", "长圳路", "田寮路", "红星路", "观光路", "光明大道"), "玉田河"),
    Street("440311006", "马田街道", 22.760, 113.880,
           ("合水口社区", "马山头社区", "将石社区", "薯田埔社区", "新庄社区", "石家社区", "根竹园社区"),
           ("马田路", "将石路", "公常路", "南环大道", "合水口路", "根竹园路"), "茅洲河"),
)

def _w(text: str) -> tuple[str, ...]:
    """Whitespace-separated words: keeps long vocabularies readable."""
    return tuple(text.split())


# Estates named in the brief, pinned to a community so the demo can mention them.
PINNED_ESTATES = {"玉律社区": ("东能华府", "玉律花园"), "田寮社区": ("田寮御景华庭",),
                  "光明社区": ("光明天安云谷",)}

_ESTATE_HEADS = _w("东能 锦绣 金辉 翠林 宏发 嘉华 鸿景 美盛 御景 丰泽 华盛 汇龙 "
                      "碧水 星河 尚峰 君兰 龙湖 新城 福海 瑞和 万象 青云 紫荆 泰和")
_ESTATE_TAILS = _w("花园 华府 雅苑 名苑 豪庭 公馆 嘉园 家园 山庄 新村 名门 华庭")
_BRAND_CHARS = "恒丰达鑫源华联宏创精艺展鹏佳信德润永盛泰富兴隆昌顺力誉博科瑞通捷豪俊明星远航辉"
_INDUSTRIES = _w("电子 塑胶制品 五金制品 模具 精密科技 光电科技 包装材料 印刷 家具 "
                  "服装 物流 新材料 电器")
_SITE_THINGS = _w("城市更新项目 保障性住房项目 安置房项目 人才住房项目 道路改造工程 学校扩建工程 "
                     "产业园项目 综合体项目")
# (name, what people call it)
_RESTAURANTS = (("湘味轩餐馆", "湘味轩"), ("老李烧烤店", "老李烧烤"), ("川渝人家酒楼", "川渝人家"),
                ("潮汕牛肉火锅店", "牛肉火锅店"), ("兰州拉面馆", "拉面馆"), ("隆江猪脚饭", "猪脚饭店"),
                ("客家大排档", "大排档"), ("好再来快餐店", "好再来"), ("东北饺子馆", "饺子馆"),
                ("重庆小面馆", "小面馆"), ("夜宵烧烤城", "烧烤城"), ("桂林米粉店", "米粉店"))
_VENUES = (("金嗓子KTV", "金嗓子"), ("星光酒吧", "那家酒吧"), ("欢乐颂KTV", "欢乐颂"), ("夜色清吧", "夜色"),
           ("好又多超市", "好又多"), ("乐购百货商场", "乐购商场"), ("动感台球城", "台球城"),
           ("快乐时光网吧", "网吧"))
_CLUBS = (("力美健健身房", "力美健"), ("启航教育培训中心", "启航培训"), ("美丽人生美容院", "美容院"),
          ("小天才托管中心", "托管中心"), ("蓝鲸游泳馆", "游泳馆"), ("优剪美发沙龙", "优剪"),
          ("乐动跆拳道馆", "跆拳道馆"), ("博雅艺术培训学校", "博雅艺术"))
_SCHOOLS = ("小学", "中学", "幼儿园", "实验学校")


@dataclass(frozen=True, slots=True)
class Place:
    """A named place: where incidents happen and how residents name it."""

    place_id: str
    name: str               # full name, e.g. 深圳市鑫源达五金制品有限公司
    kind: str               # estate village road market site restaurant venue club company school river
    street: str
    street_code: str
    community: str
    address: str            # formal address, e.g. 玉律路88号东能华府
    lat: float
    lng: float
    aliases: tuple[str, ...]  # what people call it, e.g. 鑫源达厂
    split: str = "tune"

    @property
    def road_address(self) -> str:
        """The road and number part of the address, e.g. 玉律路88号."""
        return self.address[: self.address.index("号") + 1] if "号" in self.address else self.address


def root(community: str) -> str:
    """The community's name without 社区: 李松蓢社区 → 李松蓢."""
    return community.removesuffix("社区")


def _offset(rng: random.Random, lat: float, lng: float, min_km: float, max_km: float) -> tuple[float, float]:
    """A point at a random bearing, ``min_km``..``max_km`` from (lat, lng)."""
    angle = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(min_km, max_km)
    dlat = dist * math.cos(angle) / 111.0
    dlng = dist * math.sin(angle) / (111.32 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lng + dlng, 6)


def build_gazetteer(rng: random.Random) -> list[Place]:
    """Every invented place of every community, with coordinates and evaluation splits."""
    places: list[Place] = []
    for street in STREETS:
        for community in street.communities:
            clat, clng = _offset(rng, street.lat, street.lng, 0.2, 1.0)
            for kind, name, aliases, road in _community_places(rng, street, community):
                lat, lng = _offset(rng, clat, clng, 0.05, 0.5)
                address = _address(rng, kind, name, road)
                split = "holdout" if rng.random() < HOLDOUT_SHARE else "tune"
                places.append(Place(f"P{len(places) + 1:04d}", name, kind, street.name, street.code,
                                    community, address, lat, lng, aliases, split))
    return places


def _address(rng: random.Random, kind: str, name: str, road: str) -> str:
    if kind == "river":
        return f"{road}{name}沿岸"
    number = f"{road}{rng.randint(1, 399)}号"
    return number if kind == "road" else number + name


def _community_places(rng: random.Random, street: Street, community: str
                      ) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(kind, name, aliases, road) for one community's places."""
    r = root(community)
    roads = rng.sample(street.roads, 2)
    items = [(kind, name, aliases) for kind, name, aliases in _estates(rng, community)]
    items.append(("village", f"{r}村", (f"{r}旧村", f"{r}老村", f"{r}村委附近")))
    items += [("road", road, (road,)) for road in roads]
    items.append(("market", f"{r}农贸市场", (f"{r}市场", f"{r}菜市场")))
    thing = rng.choice(_SITE_THINGS)
    short = thing.removesuffix("项目").removesuffix("工程")
    items.append(("site", f"{r}{thing}", (f"{r}工地", f"{short}工地")))
    items += [("restaurant", name, (alias,)) for name, alias in rng.sample(_RESTAURANTS, 2)]
    venue, alias = rng.choice(_VENUES)
    items.append(("venue", venue, (alias,)))
    club, alias = rng.choice(_CLUBS)
    items.append(("club", club, (alias,)))
    items += [("company", *_company(rng)) for _ in range(2)]
    school = rng.choice(_SCHOOLS)
    items.append(("school", f"光明区{r}{school}", (f"{r}{school}",)))
    items.append(("river", f"{street.river}{r}段", (street.river, f"{r}这段{street.river}")))
    return [(kind, name, aliases, name if kind == "road" else rng.choice(roads))
            for kind, name, aliases in items]


def _estates(rng: random.Random, community: str) -> list[tuple[str, str, tuple[str, ...]]]:
    names = list(PINNED_ESTATES.get(community, ()))
    while len(names) < 3:
        name = rng.choice(_ESTATE_HEADS) + rng.choice(_ESTATE_TAILS)
        if all(name[:2] != other[:2] for other in names):  # two 御景… in one community would be one 御景小区
            names.append(name)
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for name in names:
        if name == "光明天安云谷":  # a business park with flats: people call it by its brand
            out.append(("estate", name, ("天安云谷", "云谷公寓")))
            continue
        head = name[:2]
        out.append(("estate", name, (f"{name}小区", f"{head}小区")))
    return out


def _company(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    brand = "".join(rng.sample(_BRAND_CHARS, rng.choice((2, 3))))
    industry = rng.choice(_INDUSTRIES)
    return f"深圳市{brand}{industry}有限公司", (f"{brand}{industry}", f"{brand}公司", f"{brand}厂")

"""The phrasing engine: the same incident told in different words by each report of it.

A report's text is built in three steps:

1. a channel *frame* (12345 call transcript, district-head letter, Open311 post, formal petition, court
   dispute summary, legal-aid application) is filled with one fact, detail and ask of the problem kind
   (:mod:`sandbox.phrases_complaints`, :mod:`sandbox.phrases_cases`), giving a template with leaf slots;
2. synonym groups swap words (每天/天天/每日 …);
3. the leaf slots are filled with the incident's facts, each rendered its own way (3个月/三个月/3个多月,
   36500元/3.65万元/三万余元), and the place named as this reporter names it (full name, what people
   call it, road and number, only the community, now and then a typo such as 能东华府).

Reports can be written in traditional characters (the caller decides: one Open311 post in 20).
Every list is split into tune and holdout phrases (:mod:`sandbox.phrasing_types`).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import opencc

from sandbox.frames import FRAMES, GROUP_NOTES, TITLES, Frame
from sandbox.numerals import render_amount, render_count, render_days, render_hour, render_months, to_chinese
from sandbox.phrasing_types import choose, is_holdout_index
from sandbox.places import Place, root
from sandbox.problems import phrases_for
from sandbox.world import Resident

__all__ = ["Voice", "compose", "place_variant"]

TYPO_RATE = 0.05          # share of place mentions with a typo

_SYNONYMS = (
    ("严重影响", "严重干扰", "非常影响"), ("附近居民", "周边住户", "附近的住户"), ("每天", "天天", "每日"),
    ("晚上", "夜里", "夜间"), ("尽快", "尽早", "抓紧"), ("非常", "特别", "十分"), ("根本", "完全"),
    ("一直", "始终", "总是"), ("很多", "不少", "好多"), ("处理", "解决", "处置"), ("马上", "立即", "立刻"),
    ("联系不上", "找不到人"), ("小孩", "孩子"), ("电动车", "电瓶车"), ("噪音", "噪声"),
    ("医药费", "医疗费"), ("工人", "工友"), ("担心", "害怕"),
)
_HOMOPHONES = {"律": "绿", "华": "化", "园": "圆", "府": "富", "苑": "院", "城": "成", "庭": "廷", "景": "井",
               "鑫": "新", "源": "元", "达": "大", "宏": "弘", "锦": "金", "翠": "萃", "嘉": "佳", "盛": "胜"}
_VAGUE = {"estate": "{c}一个小区", "village": "{c}旧村", "road": "{c}的一条马路", "market": "{c}菜市场",
          "site": "{c}的一个工地", "restaurant": "{c}一家饭店", "venue": "{c}一家店", "club": "{c}一家店",
          "company": "{c}一家工厂", "school": "{c}的学校", "river": "{c}这段河"}
_TYPING = ("hotline12345", "mayor", "open311")   # channels where residents' own spelling comes through


@functools.cache
def _to_traditional(text: str) -> str:
    return str(_converter().convert(text))


@functools.cache
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


@dataclass(frozen=True, slots=True)
class Voice:
    """Everything one report's wording depends on."""

    channel: str
    problem: str               # the incident's kind: its facts are told
    label: str                 # the ticket's own kind (differs at legal aid: 拖欠工资 → 讨薪法律援助)
    place: Place
    name: str                  # the reporter
    party: Resident | None     # the other side, if any
    group: bool
    head_count: int
    facts: Mapping[str, int]   # the incident's facts (months, amount, days, hour, bld, floor, unit …)
    holdout: bool
    via: str = ""              # petition 信访形式
    appeal: str = "投诉"        # 12345 诉求类型
    cause: str = ""            # court 案由
    traditional: bool = False  # written in traditional characters


def compose(rng: random.Random, voice: Voice) -> tuple[str, str]:
    """(title, content) of one report."""
    frame = choose(rng, _frames(voice), holdout=voice.holdout)
    body = _expand(rng, frame.body, voice)
    title = _expand(rng, choose(rng, _titles(voice), holdout=voice.holdout), voice)
    slots = _slots(rng, voice)
    title, body = _swap_synonyms(rng, title, voice.holdout), _swap_synonyms(rng, body, voice.holdout)
    title, content = title.format_map(slots), body.format_map(slots)
    if voice.traditional:
        title, content = _to_traditional(title), _to_traditional(content)
    return title, content


def _frames(voice: Voice) -> tuple[Frame, ...]:
    frames = FRAMES[voice.channel]
    if voice.channel == "petition":
        wanted = voice.group and voice.head_count > 1
        return tuple(f for f in frames if f.group == wanted) or frames
    return frames


def _titles(voice: Voice) -> tuple[str, ...]:
    if voice.channel == "petition" and voice.group:
        return TITLES["petition_group"]
    return TITLES[voice.channel]


def _expand(rng: random.Random, template: str, voice: Voice) -> str:
    """Fill the frame's phrase slots with this kind's phrases, leaving the leaf slots."""
    own, told = phrases_for(voice.label), phrases_for(voice.problem)

    def pick(items: tuple[str, ...]) -> str:
        return choose(rng, items, holdout=voice.holdout)

    fact = choose(rng, told.facts, holdout=voice.holdout, keep=_fact_filter(rng, voice))
    parts = {
        "{fact_}": fact.replace("{who}", "其", 1) if fact.startswith("{who}") else fact,
        "{fact}": fact,
        "{detail}": pick(told.details),
        "{ask}": pick(told.asks),
        "{short}": pick(own.shorts),
        "{claim}": pick(told.claims or ("被申请人赔偿损失{amount}",)),
        "{matter}": pick(told.matters or own.matters or own.shorts),
        "{group_note}": pick(GROUP_NOTES) if voice.group else "",
    }
    for slot, text in parts.items():
        template = template.replace(slot, text)
    return template


def _fact_filter(rng: random.Random, voice: Voice) -> Callable[[str], bool]:
    """Facts that count people ({n}) only for group matters, and mostly those for them."""
    if voice.group and rng.random() < 0.6:
        return lambda fact: "{n}" in fact
    if voice.group:
        return lambda fact: True
    return lambda fact: "{n}" not in fact


def _swap_synonyms(rng: random.Random, text: str, holdout: bool) -> str:
    for index, group in enumerate(_SYNONYMS):
        if (is_holdout_index(index) and not holdout) or rng.random() < 0.4:
            continue
        pattern = "|".join(sorted(map(re.escape, group), key=len, reverse=True))
        chosen = rng.choice(group)
        text = re.sub(pattern, chosen, text)
    return text


def _slots(rng: random.Random, voice: Voice) -> dict[str, str]:
    f = voice.facts
    who = {"hotline12345": rng.choice(("来电人", "来电人", "市民")), "petition": "信访人", "court": "申请人",
           "legalaid": "申请人"}.get(voice.channel, "我")
    bld = f["bld"]
    return {
        "place": place_variant(rng, voice.place, holdout=voice.holdout, typos=voice.channel in _TYPING),
        "tplace": rng.choice((voice.place.name, *voice.place.aliases, "")),
        "who": who, "name": voice.name, "via": voice.via, "appeal": voice.appeal, "cause": voice.cause,
        "party": _party(rng, voice), "community": voice.place.community, "street": voice.place.street,
        "n": render_count(rng, voice.head_count), "months": render_months(rng, f["months"]),
        "amount": render_amount(rng, f["amount"]), "days": render_days(rng, f["days"]),
        "hour": render_hour(rng, f["hour"]),
        "bld": rng.choice((f"{bld}栋", f"{bld}号楼", f"{to_chinese(bld)}栋")),
        "room": rng.choice((f"{bld}栋{f['floor']}{f['unit']:02d}", f"{bld}栋{f['floor']}{f['unit']:02d}房",
                            f"{bld}-{f['floor']}{f['unit']:02d}")),
        "years": rng.choice((str(f["years"]), to_chinese(f["years"]))),
        "family": rng.choice((str(f["family"]), to_chinese(f["family"]))),
        "age": rng.choice((str(f["age"]), to_chinese(f["age"]))),
    }


def _party(rng: random.Random, voice: Voice) -> str:
    party = voice.party
    if party is None:
        return "对方"
    if party.resident_id.startswith("O-") or voice.channel == "court":
        short = party.name.removeprefix("深圳市").removesuffix("有限公司")
        return party.name if voice.channel in ("court", "petition") else rng.choice((party.name, short))
    surname = party.name[0]
    female = int(party.id_number[16]) % 2 == 0
    return rng.choice((party.name, f"{surname}某", f"{surname}女士" if female else f"{surname}先生"))


def place_variant(rng: random.Random, place: Place, *, holdout: bool, typos: bool = True) -> str:
    """How one reporter names ``place``: full name, alias, road and number, community only, or a typo."""
    roll = rng.random()
    if roll < TYPO_RATE and typos and len(place.name) >= 3:
        return _typo(rng, place.name)
    if roll < 0.45:
        return place.name
    if roll < 0.72:
        return rng.choice(place.aliases)
    if roll < 0.85 and place.kind not in ("road", "river"):
        return place.road_address if rng.random() < 0.5 else place.road_address + place.name
    if roll < 0.93 or not holdout:
        return _VAGUE[place.kind].format(c=rng.choice((place.community, root(place.community))))
    return f"{place.street}{place.community}{place.name}"


def _typo(rng: random.Random, name: str) -> str:
    swaps = [i for i, ch in enumerate(name) if ch in _HOMOPHONES]
    if swaps and rng.random() < 0.5:
        i = rng.choice(swaps)
        return name[:i] + _HOMOPHONES[name[i]] + name[i + 1:]
    start = 3 if name.startswith("深圳市") else 0
    i = start + rng.randrange(0, max(1, min(3, len(name) - start - 1)))
    swapped = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return swapped if swapped != name else name + "那边"

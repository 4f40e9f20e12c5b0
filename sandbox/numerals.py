"""Numbers as people write them: Arabic or Chinese numerals, exact or rounded (3个月, 三个月, 3个多月)."""

from __future__ import annotations

import random

__all__ = ["render_amount", "render_count", "render_days", "render_hour", "render_months", "to_chinese"]

_DIGITS = "零一二三四五六七八九"
_UNITS = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))


def _below_10000(number: int) -> str:
    out, gap = "", False
    for value, unit in _UNITS:
        digit = number // value % 10
        if digit == 0:
            gap = bool(out)
            continue
        if gap:
            out += "零"
            gap = False
        out += _DIGITS[digit] + unit
    return out


def to_chinese(number: int) -> str:
    """0 ≤ number < 10⁸ in Chinese numerals: 36500 → 三万六千五百, 15 → 十五, 105 → 一百零五."""
    if not 0 <= number < 10**8:
        return str(number)
    if number == 0:
        return "零"
    high, low = divmod(number, 10000)
    if high:
        text = _below_10000(high) + "万" + ("零" if 0 < low < 1000 else "") + _below_10000(low)
    else:
        text = _below_10000(low)
    return text[1:] if text.startswith("一十") else text


def _liang(number: int) -> str:
    """Chinese numerals with 两 for a lone 2 before a measure word (两个月, 两天)."""
    return "两" if number == 2 else to_chinese(number)


def render_amount(rng: random.Random, yuan: int) -> str:
    """Money: 36500元, 3.65万元, 三万六千五百元, 3万多元, 三万余元."""
    styles = [f"{yuan}元", f"{to_chinese(yuan)}元"]
    if yuan >= 10000:
        wan = yuan // 10000
        styles += [f"{round(yuan / 10000, 2):g}万元", f"{wan}万多元", f"{to_chinese(wan)}万余元"]
    elif yuan >= 1000:
        styles += [f"{yuan // 1000 * 1000}多元", f"{to_chinese(yuan // 1000)}千多块"]
    return rng.choice(styles)


def render_count(rng: random.Random, count: int) -> str:
    """A head count, read before a measure word: 30, 三十, 30多."""
    styles = [str(count), to_chinese(count)]
    if count >= 20:
        styles.append(f"{count // 10 * 10}多")
    return rng.choice(styles)


def render_months(rng: random.Random, months: int) -> str:
    return rng.choice((f"{months}个月", f"{_liang(months)}个月", f"{months}个多月"))


def render_days(rng: random.Random, days: int) -> str:
    """A duration: 5天, 五天, 一个多星期, 半个多月, 一个多月 …"""
    exact = (f"{days}天", f"{_liang(days)}天")
    if days < 7:
        vague: tuple[str, ...] = ("好几天", "几天")
    elif days < 14:
        vague = ("一个多星期", "一周多")
    elif days < 30:
        vague = ("半个多月", "二十来天")
    elif days < 60:
        vague = ("一个多月", "一个来月")
    else:
        vague = ("两个多月", "好几个月")
    return rng.choice(exact + vague)


def render_hour(rng: random.Random, hour: int) -> str:
    """An hour of the night, read after 晚上: 10点, 十点, 十点多."""
    twelve = hour % 12 or 12
    return rng.choice((f"{twelve}点", f"{to_chinese(twelve)}点", f"{to_chinese(twelve)}点多"))

"""Invented people and organisations: Chinese names, mobile numbers, national IDs, credit codes.

National ID numbers follow GB 11643-1999 (6-digit region code starting 4403 — 深圳 — birth date,
3-digit sequence whose parity is the sex, and the ISO 7064 MOD 11-2 check character), so they pass the
checks a real system runs, but are random. Organisations get a 统一社会信用代码 with a correct
GB 32100-2015 check character.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date, timedelta

from sandbox.world import Resident

__all__ = ["CITIZEN", "PersonFactory", "credit_code_ok", "id_check_char", "id_number_ok"]

# The demo citizen account's counterpart (see sandbox.world's docstring); his ID passes the check.
CITIZEN = Resident("R-CITIZEN", "陈晓明", "13728835126", "440306198807124315")

# Common surnames, most frequent first (weights fall off with rank).
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
             "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
             "覃武戴莫孔向汤")
# Zipf-like: 王 and 李 about 6% each, the hundredth name about 0.4%.
_SURNAME_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 2) ** 0.9 for rank in range(len(_SURNAMES))))
_MALE = "伟强磊军洋勇杰涛明超华辉刚平建国志文斌鹏波浩宇俊峰东海林晨凯亮健翔龙飞宁彬鑫家振庆德兴"
_FEMALE = "芳娜敏静丽艳娟霞燕玲婷雪慧红梅琳颖琴云莉倩萍洁兰凤英秀桂佳欣怡晓月丹蓉薇璐媛"
# Shenzhen district codes: 罗湖 福田 南山 宝安 龙岗 盐田 龙华 坪山 光明, and the city's own.
_REGIONS = ("440300", "440303", "440304", "440305", "440306", "440307", "440308", "440309", "440310",
            "440311")
_MOBILE_HEADS = ("13", "13", "13", "15", "15", "18", "18", "17", "19", "16", "14")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_CC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def id_check_char(first17: str) -> str:
    """GB 11643 check character of the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_number_ok(number: str) -> bool:
    """Whether ``number`` is an 18-character national ID with a valid date and check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return number[17] == id_check_char(number[:17])


def credit_code_ok(code: str) -> bool:
    """Whether ``code`` is a 统一社会信用代码 with a valid GB 32100 check character."""
    if len(code) != 18 or any(c not in _CC_CHARS for c in code):
        return False
    return code[17] == _credit_check(code[:17])


def _credit_check(first17: str) -> str:
    total = sum(_CC_CHARS.index(c) * w for c, w in zip(first17, _CC_WEIGHTS, strict=True))
    return _CC_CHARS[(31 - total % 31) % 31]


@dataclass(slots=True)
class PersonFactory:
    """Makes residents and other parties from one seeded ``random.Random``."""

    rng: random.Random
    today: date
    _made: int = 0
    _phones: set[str] | None = None

    def name(self, *, female: bool | None = None) -> str:
        rng = self.rng
        surname = rng.choices(_SURNAMES, cum_weights=_SURNAME_WEIGHTS)[0]
        if female is None:
            female = rng.random() < 0.5
        pool = _FEMALE if female else _MALE
        given = rng.choice(pool) + (rng.choice(pool) if rng.random() < 0.7 else "")
        return surname + given

    def mobile(self) -> str:
        if self._phones is None:
            self._phones = {CITIZEN.phone}
        while True:
            phone = f"{self.rng.choice(_MOBILE_HEADS)}{self.rng.randrange(10**9):09d}"
            if phone not in self._phones:
                self._phones.add(phone)
                return phone

    def id_number(self, *, female: bool) -> str:
        rng = self.rng
        born = self.today - timedelta(days=rng.randint(18 * 365, 75 * 365))
        sequence = rng.randrange(0, 500) * 2 + (0 if female else 1)
        first17 = f"{rng.choice(_REGIONS)}{born:%Y%m%d}{sequence:03d}"
        return first17 + id_check_char(first17)

    def resident(self) -> Resident:
        """A new resident with a unique id, a name, a mobile number and a national ID."""
        self._made += 1
        female = self.rng.random() < 0.45
        return Resident(f"R-{self._made:05d}", self.name(female=female), self.mobile(),
                        self.id_number(female=female))

    def spouse_of(self, resident: Resident) -> Resident:
        """The other party of a marriage matter: a person of the other sex (by the ID's sequence digit)."""
        self._made += 1
        female = int(resident.id_number[16]) % 2 == 1
        return Resident(f"R-{self._made:05d}", self.name(female=female), self.mobile(),
                        self.id_number(female=female))

    def organisation(self, name: str) -> Resident:
        """An organisation as a party: its 统一社会信用代码 as id number, a Shenzhen landline."""
        rng = self.rng
        self._made += 1
        digits = [rng.randrange(10) for _ in range(8)]
        check = 11 - sum(d * w for d, w in zip(digits, _ORG_WEIGHTS, strict=True)) % 11
        org = "".join(map(str, digits)) + {10: "X", 11: "0"}.get(check, str(check))
        first17 = "914403" + "00" + org
        phone = f"0755-{rng.choice('236')}{rng.randrange(10**7):07d}"
        return Resident(f"O-{self._made:05d}", name, phone, first17 + _credit_check(first17))

"""The 30 problem kinds of the sandbox world: labels, frequency, where they happen, which channels take them.

Labels are the shared event dictionary's 4-level paths (COMMON.md). ``channels`` weighs the channels a
resident would use for the kind (12345 takes everything; the district-head hotline and Open311 take
complaints, Open311 only city issues; the court only disputes; legal aid legal services and disputes it
can act on; petitions complaints, disputes and hardship). ``weight`` is how common the kind is among
incidents (noise, parking, wage arrears and property matters lead; psychological services are rare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.phrases_cases import AID, CARE, DISPUTES, LEGAL
from sandbox.phrases_complaints import COMPLAINTS
from sandbox.phrasing_types import Phrases

__all__ = ["KINDS", "Kind", "kind_of", "phrases_for"]

# Channel weights by kind family.
_CITY = {"hotline12345": 42, "mayor": 18, "open311": 26, "petition": 7}
_HOUSING = {"hotline12345": 48, "mayor": 24, "petition": 17}
_DISPUTE = {"hotline12345": 22, "court": 42, "petition": 17, "legalaid": 19}
_DISPUTE_NO_AID = {"hotline12345": 30, "court": 48, "petition": 22}
_LEGAL = {"hotline12345": 28, "legalaid": 72}
_CARE = {"hotline12345": 100}
_HARDSHIP = {"hotline12345": 68, "petition": 32}


@dataclass(frozen=True, slots=True)
class Kind:
    """One problem kind and how the world uses it."""

    path: tuple[str, str, str, str]
    weight: float                    # relative frequency among incidents
    places: tuple[str, ...]          # place kinds where it happens
    channels: dict[str, int] = field(hash=False)
    group_rate: float = 0.0          # share of incidents that are group matters
    group_size: tuple[int, int] = (5, 40)
    party: str | None = None         # the other side: employer, property, neighbour, landlord, driver, spouse
    cause: str | None = None         # court 案由
    aid: str | None = None           # the legal-aid kind this becomes when brought to legal aid
    aid_type: str | None = None      # legal aid 援助事项类别
    appeal: str = "投诉"              # 12345 诉求类型

    @property
    def problem(self) -> str:
        return self.path[-1]

    @property
    def top(self) -> str:
        return self.path[0]


def _p(path: str) -> tuple[str, str, str, str]:
    a, b, c, d = path.split("/")
    return a, b, c, d


KINDS: tuple[Kind, ...] = (
    Kind(_p("投诉建议/城市管理/市容环境/占道经营"), 5, ("road", "market", "village"), _CITY),
    Kind(_p("投诉建议/城市管理/市容环境/垃圾清运不及时"), 4, ("estate", "village", "market"), _CITY),
    Kind(_p("投诉建议/城市管理/违法建设/违建搭建"), 3, ("estate", "village"), _CITY, 0.05, (5, 20)),
    Kind(_p("投诉建议/生态环境/噪声污染/施工噪声扰民"), 7, ("site",), _CITY, 0.08, (10, 60)),
    Kind(_p("投诉建议/生态环境/噪声污染/商业噪声扰民"), 5, ("venue", "market", "restaurant"), _CITY),
    Kind(_p("投诉建议/生态环境/大气污染/油烟扰民"), 4, ("restaurant",), _CITY),
    Kind(_p("投诉建议/生态环境/水污染/河道污染"), 2, ("river",), _CITY, 0.05, (10, 50)),
    Kind(_p("投诉建议/交通运输/道路设施/路面破损"), 3, ("road",), _CITY, appeal="建议"),
    Kind(_p("投诉建议/交通运输/停车管理/乱停车"), 7, ("road", "estate", "school", "market"), _CITY),
    Kind(_p("投诉建议/住房建设/物业管理/物业服务质量"), 5, ("estate",), _HOUSING, 0.15, (10, 120)),
    Kind(_p("投诉建议/住房建设/房屋安全/房屋漏水"), 3, ("estate",), _HOUSING),
    Kind(_p("投诉建议/市场监管/食品安全/食品安全问题"), 2, ("restaurant", "school", "market"), _HOUSING),
    Kind(_p("投诉建议/市场监管/消费维权/预付卡退费"), 3, ("club",), _HOUSING, 0.3, (10, 80)),
    Kind(_p("投诉建议/公共安全/消防安全/消防通道堵塞"), 2, ("estate", "village", "market"), _CITY),
    Kind(_p("纠纷调解/劳动纠纷/劳动报酬/拖欠工资"), 7, ("company", "site"), _DISPUTE, 0.35, (8, 60),
         party="employer", cause="劳动争议", aid="讨薪法律援助", aid_type="劳动仲裁代理", appeal="求助"),
    Kind(_p("纠纷调解/劳动纠纷/工伤待遇/工伤赔偿"), 2.5, ("company", "site"), _DISPUTE, party="employer",
         cause="工伤保险待遇纠纷", aid="人身损害赔偿援助", aid_type="劳动仲裁代理", appeal="求助"),
    Kind(_p("纠纷调解/物业纠纷/物业费/物业费纠纷"), 3.5, ("estate",), _DISPUTE_NO_AID, party="property",
         cause="物业服务合同纠纷"),
    Kind(_p("纠纷调解/邻里纠纷/相邻关系/相邻漏水纠纷"), 2.5, ("estate",), _DISPUTE_NO_AID,
         party="neighbour", cause="相邻关系纠纷"),
    Kind(_p("纠纷调解/合同纠纷/租赁合同/房屋租赁纠纷"), 3, ("estate", "village"), _DISPUTE, party="landlord",
         cause="房屋租赁合同纠纷", aid="合同法律咨询", aid_type="民事诉讼代理"),
    Kind(_p("纠纷调解/交通事故/损害赔偿/交通事故赔偿"), 2, ("road",), _DISPUTE, party="driver",
         cause="机动车交通事故责任纠纷", aid="人身损害赔偿援助", aid_type="民事诉讼代理"),
    Kind(_p("纠纷调解/婚姻家庭/离婚纠纷/离婚财产纠纷"), 1.5, ("estate", "village"), _DISPUTE, party="spouse",
         cause="离婚后财产纠纷", aid="婚姻家庭咨询", aid_type="民事诉讼代理"),
    Kind(_p("法律服务/法律援助/劳动争议/讨薪法律援助"), 4, ("company", "site"), _LEGAL, 0.2, (5, 30),
         party="employer", aid_type="劳动仲裁代理", appeal="求助"),
    Kind(_p("法律服务/法律援助/人身损害/人身损害赔偿援助"), 2, ("road", "market", "estate"), _LEGAL,
         party="driver", aid_type="民事诉讼代理", appeal="求助"),
    Kind(_p("法律服务/法律咨询/婚姻家庭/婚姻家庭咨询"), 2.5, ("estate", "village"), _LEGAL, party="spouse",
         aid_type="法律咨询", appeal="咨询"),
    Kind(_p("法律服务/法律咨询/合同/合同法律咨询"), 2.5, ("estate", "company"), _LEGAL, party="debtor",
         aid_type="代写法律文书", appeal="咨询"),
    Kind(_p("心理服务/心理咨询/情绪困扰/焦虑抑郁疏导"), 1.2, ("estate", "village"), _CARE, appeal="求助"),
    Kind(_p("心理服务/危机干预/家庭矛盾/家庭矛盾心理疏导"), 1.3, ("estate", "village"), _CARE, appeal="求助"),
    Kind(_p("帮扶救助/社会救助/最低生活保障/低保申请"), 2, ("village", "estate"), _HARDSHIP, appeal="求助"),
    Kind(_p("帮扶救助/社会救助/临时救助/临时救助申请"), 1.5, ("village", "estate"), _HARDSHIP, appeal="求助"),
    Kind(_p("帮扶救助/困难帮扶/残疾人帮扶/残疾人补贴申请"), 1.5, ("village", "estate"), _HARDSHIP,
         appeal="求助"),
)

_BY_PROBLEM = {kind.problem: kind for kind in KINDS}
_PHRASES: dict[str, Phrases] = {**COMPLAINTS, **DISPUTES, **LEGAL, **CARE, **AID}


def kind_of(problem: str) -> Kind:
    return _BY_PROBLEM[problem]


def phrases_for(problem: str) -> Phrases:
    return _PHRASES[problem]

"""Channel frames: how each channel's staff or residents put a report into words.

Phrase slots (filled from the problem kind's phrases): ``{fact}``, ``{fact_}`` (the fact with its leading
subject turned into 其, for frames that have already named the person), ``{detail}``, ``{ask}``,
``{short}``, ``{claim}``, ``{matter}``, ``{group_note}``. Leaf slots: see :mod:`sandbox.phrasing`.
Each fourth frame and title of a channel (index 3, 7 …) is a holdout phrasing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FRAMES", "GROUP_NOTES", "TITLES", "Frame"]


@dataclass(frozen=True, slots=True)
class Frame:
    body: str
    group: bool = False   # petition frames for group petitions (集体访)


FRAMES: dict[str, tuple[Frame, ...]] = {
    # 12345: the operator's summary of a call
    "hotline12345": (
        Frame("市民来电反映：{fact_}，{group_note}{detail}。来电人要求{ask}。"),
        Frame("来电人称：{fact_}。{group_note}{detail}，希望{ask}。"),
        Frame("{street}{community}市民来电{appeal}：{fact}。{group_note}{detail}。诉求：{ask}。"),
        Frame("来电人表示，{fact_}，{detail}，情绪比较激动。{group_note}来电人要求{ask}，请相关部门处理。"),
        Frame("市民来电{appeal}，{fact_}。{group_note}来电人希望{ask}。"),
        Frame("来电人{name}反映：{fact_}，{group_note}{detail}，请{ask}。"),
    ),
    # 区长热线: letters written by the resident
    "mayor": (
        Frame("尊敬的区长：您好！我是{community}的居民，{fact}。{group_note}{detail}。恳请区长关注，{ask}！"),
        Frame("区长您好，{fact}。{group_note}{detail}，多次反映没有结果，希望{ask}，谢谢！"),
        Frame("领导好！想反映一下{short}的问题：{fact}。{detail}。请{ask}。"),
        Frame("您好，我住在{street}{community}，{fact}，{group_note}{detail}。希望政府重视，{ask}。"),
        Frame("区长：{fact}！{detail}。老百姓实在没办法了，请求{ask}。"),
    ),
    # Open311: short message-board posts and app reports
    "open311": (
        Frame("{fact}，有人管吗？"),
        Frame("{short}！{fact}。"),
        Frame("{fact}，{detail}，麻烦处理一下"),
        Frame("又来了，{fact}，希望{ask}"),
        Frame("{fact}。{detail}。"),
        Frame("【{short}】{fact}，请{ask}，谢谢"),
    ),
    # 信访: formal registrations
    "petition": (
        Frame("信访人{name}{via}反映：{fact_}，{detail}。请求{ask}。"),
        Frame("信访人{name}（{community}居民）{via}反映，{fact_}。{detail}。信访诉求：{ask}。"),
        Frame("信访事项：{fact}。信访人称{detail}，请求{ask}。"),
        Frame("{name}{via}称，{fact_}，{detail}，要求{ask}。"),
        Frame("信访人{name}等{n}人{via}反映：{fact_}。{detail}。信访人请求{ask}。", group=True),
        Frame("{name}等{n}人集体{via}，反映{fact_}，{detail}，请求{ask}。", group=True),
        Frame("群体信访：{name}等{n}人反映{fact_}。诉求：{ask}。", group=True),
    ),
    # 诉前调解: the court's dispute summary
    "court": (
        Frame("申请人{name}与被申请人{party}因{cause}产生纠纷。申请人称：{fact_}。申请人请求：{claim}。"),
        Frame("申请人{name}诉称，{fact_}，{detail}。现申请诉前调解，请求{claim}。"),
        Frame("{name}与{party}{cause}一案。申请人主张：{fact}。诉讼请求：{claim}。"),
        Frame("申请人{name}因与被申请人{party}{cause}，向本院申请诉前调解。事实与理由：{fact}，{detail}。"),
        Frame("案由：{cause}。申请人{name}称{fact_}，{group_note}请求{claim}。"),
    ),
    # 法律援助: applications
    "legalaid": (
        Frame("申请人{name}因{matter}申请法律援助。{fact}，{group_note}{detail}。"),
        Frame("申请人称：{fact_}。{detail}，申请人经济困难，无力委托律师，特申请法律援助。"),
        Frame("{name}，{community}居民，{fact_}。现就{matter}事项申请法律援助，请求{ask}。"),
        Frame("申请事项：{matter}。案情简介：{fact}，{group_note}{detail}。"),
        Frame("申请人{name}（{street}{community}）称，{fact_}，{detail}，请求{ask}。"),
    ),
    # 书记在线: residents scan a QR code posted by the district, street or community secretary
    "shuji": (
        Frame("书记您好，我是{community}居民，{fact}。{group_note}{detail}，希望书记帮忙{ask}。"),
        Frame("扫码反映：{fact}，{detail}。请书记关注，{ask}。"),
        Frame("{street}书记：{fact}，{group_note}{detail}，盼{ask}。"),
        Frame("我们小区{fact}，{detail}，找了好几次都没人管，请书记{ask}。"),
        Frame("反映{short}：{fact}。{detail}。"),
    ),
    # 局长信箱: letters to the head of a district bureau
    "juzhang": (
        Frame("局长您好：{fact}。{group_note}{detail}。请贵局依法处理，{ask}。"),
        Frame("尊敬的局长：本人{name}，{fact}，{detail}，恳请{ask}。"),
        Frame("致局长信箱：{fact}，{group_note}{detail}，望局里重视，{ask}。"),
        Frame("局长：{fact}！{detail}，请贵局尽快{ask}。"),
        Frame("您好，{street}{community}{fact}，希望{ask}。"),
    ),
}

TITLES: dict[str, tuple[str, ...]] = {
    "hotline12345": ("{tplace}{short}", "反映{short}问题", "{community}{short}",
                     "关于{tplace}{short}的{appeal}", "{short}"),
    "mayor": ("请区长关注{tplace}{short}问题", "反映{tplace}{short}", "{tplace}{short}何时能解决？",
              "关于{short}问题的{appeal}", "{community}居民反映{short}"),
    "open311": ("{short}", "{tplace}{short}", "{short}求处理", "{tplace}{short}没人管？"),
    "petition": ("关于{short}的信访事项", "{name}反映{short}问题", "反映{tplace}{short}",
                 "{name}{via}反映{short}"),
    "petition_group": ("{name}等{n}人反映{short}问题", "关于{tplace}{short}的集体访",
                       "{name}等{n}人{short}信访"),
    "court": ("{name}与{party}{cause}", "{cause}（{name}诉{party}）", "{name}申请诉前调解：{cause}",
              "{cause}调解申请"),
    "shuji": ("{tplace}{short}", "请书记关注{short}问题", "{community}{short}求解决", "扫码反映{short}"),
    "juzhang": ("关于{tplace}{short}的来信", "请局长督办{short}问题", "{tplace}{short}", "反映{short}"),
    "legalaid": ("{name}{matter}法律援助申请", "关于{matter}的法律援助申请", "{matter}（申请人{name}）",
                 "{name}申请法律援助"),
}

# Said in group matters (before the detail): how many people it concerns.
GROUP_NOTES = ("涉及{n}人，", "共有{n}人受影响，", "一共{n}个人，", "{n}人联名反映，")

"""The matcher on hand-made cases: typo'd and traditional names, hard negatives, text-only posts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from casework.dedup import Signature, compare, decide, signature
from casework.facts import Facts, conflict, facts
from casework.model import StoredCase
from casework.placenames import named_places, place_keys
from casework.reference import Reference
from connectors import Party, UnifiedStatus
from tests.processes import outputs_under_hash_seeds

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


def _case(key: str, title: str, content: str, *, address: str | None = None, region: str | None = None,
          category: str | None = None, hours: float = 0.0) -> StoredCase:
    at = T0 + timedelta(hours=hours)
    channel, _, source = key.partition(":")
    return StoredCase(key=key, channel=channel, source_id=source, title=title, content=content,
                      category_id=category, region_id=region, address=address, lat=None, lng=None, parties=(),
                      status=UnifiedStatus.SUBMITTED, source_status="new", received_at=at, updated_at=at,
                      ingested_at=at)


def _merge(reference: Reference, a: StoredCase, b: StoredCase) -> bool:
    return decide(compare(signature(a, reference, ()), signature(b, reference, ()), reference)).merge


def test_swapped_characters_name_the_same_estate() -> None:
    assert place_keys("东能华府") == place_keys("能东华府")
    assert place_keys("美盛名苑") == place_keys("美盛小区")
    assert place_keys("光明村") != place_keys("光明农贸市场")
    assert "一个小区" not in named_places("迳口一个小区门禁形同虚设")


def test_companies_are_told_apart_by_their_brand_and_streets_are_no_roads() -> None:
    [full] = named_places("深圳市永源俊光电科技有限公司拖欠工资")
    [short] = named_places("在永源俊公司上班")
    [other] = named_places("科富光电科技有限公司不给认定工伤")
    assert place_keys(full) == place_keys(short) != place_keys(other)
    assert named_places("光明街道碧眼社区居民反映") == []
    # an industry's words are no brand: two 塑胶制品 / 五金制品 / 包装材料 makers are two companies
    [plastics, hardware, packaging] = (named_places(f"深圳市{name}有限公司拖欠工资")[0]
                                       for name in ("信豪塑胶制品", "博顺五金制品", "通兴力包装材料"))
    assert len({*place_keys(plastics), *place_keys(hardware), *place_keys(packaging)}) == 3
    assert named_places("光明街上的商户") == ["光明街"]


def test_sub_districts_and_communities_are_no_named_places() -> None:
    # 上村社区 is a community (the region signal), not a village called 上村; nor is 道上村 a name
    assert named_places("我住在上村社区") == []
    assert named_places("公明街道上村社区华星路12号") == ["华星路"]
    # a name never runs across a community's name
    assert named_places("楼村社区楼村小学门口") == ["楼村小学"]
    assert named_places("凤凰街道东坑社区美盛名苑") == ["美盛名苑"]
    assert place_keys(named_places("光明街道碧眼社区碧眼村")[0]) == place_keys("碧眼村")


def test_words_before_a_suffix_that_name_no_place_are_no_named_places() -> None:
    # real posts say where without a name: 交汇处路(灯), 十字路(口), 旁边的路(面), 困难家庭, 两家公司
    assert named_places("光明大道与华夏路交汇处路灯不亮") == ["光明大道", "与华夏路"]
    assert named_places("华夏路口的路灯坏了") == ["华夏路"]
    for text in ("这个十字路口红绿灯坏了", "菜市场旁边的路面塌陷", "学校旁边的网吧", "主干道的路灯",
                 "低保困难家庭申请救助", "两家公司纠纷", "装修公司跑路", "村民反映河道污染", "前往医院就医"):
        assert named_places(text) == [], text
    # … while a name before 的 or before a generic word still counts, told apart by its brand
    assert named_places("东能华府的消防通道") == ["东能华府"]
    assert named_places("茅洲河道污染") == ["茅洲河"]
    assert place_keys("顺丰快递公司") == place_keys("顺丰公司") != place_keys("中通快递公司")
    # a name that a word (道路) ended too soon runs on to its suffix; generic words alone name nothing
    assert named_places("东坑道路改造工程夜间施工") == ["东坑道路改造工程"]
    assert place_keys(named_places("市民反映东坑道路改造工程")[0]) == place_keys("东坑道路改造工程")
    assert named_places("道路改造工程噪音") == named_places("保障性住房项目欠薪") == []


def test_everyday_words_before_a_road_or_river_name_nothing() -> None:
    # 路面, 路灯, 跑路, 开庭, 政府 …: a suffix's character inside an everyday word, with no name before it
    for text in ("请有关部门尽快修复路面", "晚上路灯也不亮", "来电人希望彻底整修这段路", "老板卷款跑路",
                 "劳动仲裁开庭时间快到了", "希望政府重视", "请区长关注学校门口乱停车", "希望责令公司支付工资",
                 "排污口往河里偷排污水", "最近河道发臭"):
        assert named_places(text) == [], text
    # a name never runs across 在 (as across 的): the river called 有人在 hid the road 河心路
    assert named_places("有人在河心路路边摆摊卖菜") == ["河心路"]
    assert place_keys(named_places("住在碧水花园")[0]) == place_keys("碧水花园")
    # 公路 ends a road's name (松白公路 is 松白路), but 高速公路 and 乡村公路 name none
    assert place_keys(named_places("松白公路车辆超速")[0]) == place_keys("松白路")
    assert named_places("高速公路上有落石") == named_places("乡村公路坑洼") == named_places("一条公路") == []


def test_an_old_village_and_a_wet_market_are_the_village_and_the_market() -> None:
    assert place_keys(named_places("将石旧村周边摆摊")[0]) == place_keys("将石村")
    assert place_keys(named_places("下村老村消防通道")[0]) == place_keys("下村村")
    assert place_keys(named_places("红星菜市场垃圾站")[0]) == place_keys("红星农贸市场")


def test_a_name_typed_with_a_homophone_is_the_same_place(reference: Reference) -> None:
    # a pinyin input method offers 锦秀 for 锦绣: the names disagree by their characters, not their sound
    words = "消防通道被车辆堵塞，救护车开不进来，请尽快清理。"
    a = _case("hotline12345:1", "锦绣花园消防通道堵塞", f"锦绣花园{words}", region="440311001001")
    typed = _case("open311:2", "锦秀花园消防通道被堵", f"锦秀花园的{words}", region="440311001001", hours=6)
    other = _case("open311:3", "碧水花园消防通道被堵", f"碧水花园的{words}", region="440311001001", hours=6)
    assert place_keys("锦绣花园") != place_keys("锦秀花园")
    assert compare(signature(a, reference, ()), signature(typed, reference, ()), reference).place == 1.0
    assert _merge(reference, a, typed)
    assert compare(signature(a, reference, ()), signature(other, reference, ()), reference).place == -1.0
    assert not _merge(reference, a, other)
    # … but not a company's: brands are made of lucky characters that sound alike (鑫 信 新, 兴 星)
    claim = "拖欠工资三个月，老板联系不上，请求帮助追讨。"
    xin = _case("legalaid:4", "追索劳动报酬", f"在鑫联电子有限公司上班，{claim}")
    other_xin = _case("legalaid:5", "追索劳动报酬", f"在信联电子有限公司上班，{claim}", hours=6)
    brands = compare(signature(xin, reference, ()), signature(other_xin, reference, ()), reference)
    assert brands.place == -1.0


def _posted_apart(reference: Reference, pairs: tuple[tuple[str, str], ...],
                  region: str | None = None) -> None:
    """Each pair of posts, three hours apart, stays two incidents."""
    for first, second in pairs:
        a = _case("open311:1", first[:8], first, region=region)
        b = _case("open311:2", second[:8], second, region=region, hours=3)
        assert not _merge(reference, a, b), first


def test_free_text_posts_that_name_no_place_stay_apart(reference: Reference) -> None:
    # the same words at two unnamed spots: only a shared place lets words merge reports
    _posted_apart(reference, (("光明大道与华夏路交汇处路灯不亮，晚上很黑。",
                               "东明大道与龙大路交汇处路灯不亮，晚上很黑。"),
                              ("这个十字路口红绿灯坏了，车辆乱行，很危险。",
                               "那个十字路口红绿灯坏了，车辆乱行，很危险。"),
                              ("菜市场旁边的路面塌陷，有个大坑。", "超市旁边的路面塌陷，有个大坑。")))


def test_neighbours_at_other_house_numbers_are_other_places(reference: Reference) -> None:
    text = ("临时困难救助", "家里突发火灾，东西都烧没了，急需临时救助，诉求协调解决医疗费用。")
    a = replace(_case("hotline12345:1", *text, address="华夏路170号"), lat=22.7500, lng=113.9000)
    b = replace(_case("hotline12345:2", *text, address="华夏路81号", hours=5), lat=22.7504, lng=113.9002)
    same = replace(b, key="hotline12345:3", address="华夏路170号")
    assert compare(signature(a, reference, ()), signature(b, reference, ()), reference).place == -1.0
    assert _merge(reference, a, same)  # ~50 m apart, one address: the same place


def test_house_numbers_in_the_words_tell_places_apart(reference: Reference) -> None:
    # a message board's post has no address field: it gives the number in its words
    words = "门口垃圾堆积，臭气熏天，好几天没人清理。"
    a = _case("open311:1", "垃圾堆积", f"华夏路88号{words}")
    there = _case("open311:2", "垃圾没人清", f"我家在华夏路88号，{words}", hours=4)
    elsewhere = _case("open311:3", "垃圾堆积", f"华夏路96号{words}", hours=4)
    filed = replace(elsewhere, key="hotline12345:4", content=words, address="光明区华夏路96号")
    assert _merge(reference, a, there)
    assert not _merge(reference, a, elsewhere)
    assert compare(signature(a, reference, ()), signature(filed, reference, ()), reference).place == -1.0
    # another road's number says nothing of this one's
    corner = _case("open311:5", "垃圾堆积", f"华夏路88号往光明大道12号那边，{words}", hours=4)
    assert compare(signature(a, reference, ()), signature(corner, reference, ()), reference).place == 1.0
    stored = signature(a, reference, ()).dump()
    assert Signature.load(stored).road_numbers == {"road:华夏": frozenset({"88"})}


def test_an_address_given_in_words_is_the_address_field_of_another_report(reference: Reference) -> None:
    # the hotline files the address (and a community); a message-board post gives only its words: the
    # same road and number is the same doorway, and both are filed under it, so one finds the other
    call = _case("hotline12345:1", "反映垃圾堆积", "门口垃圾堆积好几天没人清运，臭气熏天。",
                 address="光明区华夏路88号", region="440311001001")
    post = _case("open311:2", "华夏路垃圾", "华夏路八十八号门口的垃圾好几天没人收了，太臭了。", hours=5)
    first, second = signature(call, reference, ()), signature(post, reference, ())
    assert compare(first, second, reference).place == 1.0
    assert _merge(reference, call, post)
    assert "nb:road:华夏#88" in set(first.blocks()) & set(second.blocks())
    other = replace(post, content=post.content.replace("八十八", "九十六"))
    assert not _merge(reference, call, other)


def test_house_numbers_written_in_chinese_numerals_are_read(reference: Reference) -> None:
    words = "门口垃圾堆积，臭气熏天，好几天没人清理。"
    a = _case("open311:1", "垃圾堆积", f"华夏路八十八号{words}")
    same = _case("open311:2", "垃圾堆积", f"华夏路88号{words}", hours=4)
    other = _case("open311:3", "垃圾堆积", f"华夏路九十六号{words}", hours=4)
    assert signature(a, reference, ()).said == ("华夏路88",)
    assert _merge(reference, a, same)
    assert not _merge(reference, a, other)


def test_two_crossings_on_one_long_road_are_two_places(reference: Reference) -> None:
    lights = "红绿灯坏了，车辆乱行，很危险。"
    a = _case("open311:1", "红绿灯坏了", f"光明大道与华夏路交叉口{lights}")
    same = _case("open311:2", "红绿灯坏了", f"华夏路和光明大道路口的{lights}", hours=3)
    other = _case("open311:3", "红绿灯坏了", f"光明大道与龙大路交叉口{lights}", hours=3)
    assert _merge(reference, a, same)
    assert compare(signature(a, reference, ()), signature(other, reference, ()), reference).place == -1.0
    assert not _merge(reference, a, other)
    stored = signature(a, reference, ()).dump()
    assert Signature.load(stored).crossings == ("road:光明|road:华夏",)


def test_other_parts_of_one_place_are_other_incidents(reference: Reference) -> None:
    # an estate's phases, its gates, a road's sections: the same words at another part are another spot
    _posted_apart(reference, (("东能华府一期电梯坏了三天了，老人上下楼很困难，物业不管。",
                               "东能华府二期电梯坏了三天了，老人上下楼很困难，物业不管。"),
                              ("东能华府东门有人摆摊卖菜，垃圾乱扔，城管来了就跑。",
                               "东能华府西门有人摆摊卖菜，垃圾乱扔，城管来了就跑。"),
                              ("光明大道南段路面塌陷，有个大坑，很危险。",
                               "光明大道北段路面塌陷，有个大坑，很危险。")), region="440311001001")
    a = _case("open311:1", "电梯坏了", "东能华府二期电梯坏了三天了，老人上下楼很困难。",
              region="440311001001")
    b = _case("open311:2", "电梯坏了", "东能华府二期的电梯坏了好几天，老人上下楼很困难，物业不管。",
              region="440311001001", hours=3)
    assert _merge(reference, a, b)
    # an instalment plan, a first training course, a deadline and a brand are no parts of a place
    for text in ("手机分12期付款", "第一期培训", "逾期未还", "疫情期间", "西门子冰箱", "华南门窗有限公司"):
        assert facts(text).parts == (), text
    stated = facts("东能华府2期8栋北门")
    assert stated.parts == ("期2", "门北")
    assert Facts.load(stated.dump()) == stated
    assert Facts.load([[], ["8"], [], []]) == Facts(buildings=("8",))  # stored before parts


def test_traditional_text_and_a_typo_merge(reference: Reference) -> None:
    a = _case("hotline12345:1", "东能华府消防通道堵塞",
              "东能华府消防通道被车辆堵塞，救护车开不进来，请清理。",
              address="光明大道270号东能华府")
    b = _case("open311:2", "能東華府消防通道被堵",
              "能東華府的消防通道被車輛堵塞，救護車開不進來，請盡快清理。",
              hours=20)
    assert _merge(reference, a, b)


def test_same_problem_at_another_place_stays_apart(reference: Reference) -> None:
    a = _case("hotline12345:1", "流动摊贩占道",
              "有人在红星村路边摆摊卖菜，垃圾随手乱扔，城管一来就跑。")
    b = _case("hotline12345:2", "流动摊贩占道",
              "有人在东周村路边摆摊卖菜，垃圾随手乱扔，城管一来就跑。", hours=3)
    assert not _merge(reference, a, b)


def test_another_problem_at_the_same_place_stays_apart(reference: Reference) -> None:
    a = _case("hotline12345:1", "瑞和山庄消防通道堵塞",
              "瑞和山庄消防通道被商户堆放货物，一旦着火后果不堪设想。",
              address="松白路29号瑞和山庄")
    b = _case("mayor:2", "瑞和山庄垃圾清运不及时",
              "瑞和山庄楼下垃圾桶天天满溢，环卫车隔好几天才来一次。",
              address="松白路29号瑞和山庄", hours=5)
    assert not _merge(reference, a, b)


def test_free_text_only_posts_dedup_from_their_words(reference: Reference) -> None:
    a = _case("open311:1", "碧水山庄楼下烧烤油烟",
              "碧水山庄楼下烧烤店油烟直排，晚上开到凌晨，窗户都不敢开。")
    b = _case("open311:2", "碧水山庄烧烤油烟扰民",
              "碧水山庄楼下的烧烤店油烟直排，开到凌晨两点，窗户都不敢开。", hours=30)
    assert _merge(reference, a, b)


def test_facts_read_amounts_rooms_and_months_however_written() -> None:
    assert not conflict(facts("欠薪3.65万元"), facts("欠了三万六千五百元"))
    assert not conflict(facts("欠薪3.65万元"), facts("三万余元没给"))
    assert conflict(facts("还欠32100元"), facts("还欠二万余元"))
    assert not conflict(facts("19栋3202漏水"), facts("19-3202天花板漏水"))
    assert conflict(facts("19栋3202漏水"), facts("7栋1101漏水"))
    assert conflict(facts("拖欠四个月的工资"), facts("拖欠6个月工资"))
    assert not conflict(facts("拖欠四个月的工资"), facts("已经一个多月了"))
    # as receipts, judgments and hurried messages write them
    assert not conflict(facts("人民币叁万贰仟元整"), facts("欠薪32,000元"))
    assert conflict(facts("人民币叁万贰仟元整"), facts("欠薪三万元"))
    assert not conflict(facts("工资3.2万没发"), facts("拖欠三万二千元"))
    assert conflict(facts("欠了8万多,至今未还"), facts("欠款5万"))
    assert facts("小区占地2万平方米").amounts == facts("涉及3万人").amounts == ()
    assert conflict(facts("b栋1502室漏水"), facts("c栋1502室漏水"))
    assert not conflict(facts("b栋1502室漏水"), facts("b栋漏水"))
    # a room alone: real posts often leave the building out
    assert conflict(facts("1203室漏水"), facts("803室漏水"))
    assert conflict(facts("1203室漏水"), facts("3栋803房漏水"))
    assert not conflict(facts("3栋1203室漏水"), facts("1203号房天花板漏水"))
    assert not conflict(facts("1203室漏水"), facts("3栋漏水"))
    assert facts("押金3000房东不退").buildings == ()
    # a unit (entrance) of a building: another unit's flat 1203 is another flat; a report without one
    # may be in any
    assert facts("5号楼2单元501漏水").buildings == ("5:2/501",)
    assert conflict(facts("5栋2单元1203室漏水"), facts("5栋1单元1203室漏水"))
    assert not conflict(facts("5栋2单元1203室漏水"), facts("5栋1203漏水"))
    assert not conflict(facts("5栋二单元楼道灯坏了"), facts("5栋楼道灯坏了"))


def test_a_room_alone_files_no_building_block(reference: Reference) -> None:
    case = _case("open311:1", "美盛名苑漏水", "美盛名苑1203室楼上漏水")
    assert signature(case, reference, ()).blocks() == ["pl:estate:盛美"]
    # a unit files under its building: a report without the unit looks there
    case = _case("open311:1", "美盛名苑漏水", "美盛名苑5栋2单元1203室楼上漏水")
    assert signature(case, reference, ()).blocks() == ["pl:estate:盛美", "pl:estate:盛美#5"]


def test_head_counts_tell_two_group_claims_apart() -> None:
    assert conflict(facts("孙某等四十一人集体来访"), facts("拖欠二十二名农民工的工资"))
    assert not conflict(facts("孙某等四十一人集体来访"), facts("拖欠41名工人的工资"))
    assert not conflict(facts("拖欠20多名工友的工资"), facts("涉及二十三人"))  # 20多 covers 23
    assert conflict(facts("拖欠20多名工友的工资"), facts("拖欠19名农民工的工资"))
    assert not conflict(facts("家里两人被狗咬伤"), facts("涉及20人"))  # too few to be a head count
    assert facts("一个人在家").people == ()


def test_same_place_and_problem_with_other_facts_stays_apart(reference: Reference) -> None:
    a = _case("court:1", "劳动争议",
              "申请人诉称，其从恒兴模具有限公司离职后，公司一直不结清工资，还欠32100元。")
    b = _case("legalaid:2", "讨要拖欠工资",
              "申请人称：其从恒兴模具有限公司离职后，公司一直不结清工资，还欠二万余元。", hours=20)
    c = _case("hotline12345:3", "欠薪", "恒兴模具有限公司离职后一直不结清工资，还欠3.21万元。", hours=30)
    assert not _merge(reference, a, b)
    assert _merge(reference, a, c)


def test_an_old_report_needs_near_identical_words(reference: Reference) -> None:
    a = _case("hotline12345:1", "瑞和山庄消防通道堵塞",
              "瑞和山庄消防通道被商户堆放货物，一旦着火后果不堪设想。")
    b = _case("mayor:2", "瑞和山庄消防通道被堵",
              "瑞和山庄的消防通道又被商户堆满货物，救护车都开不进来。", hours=24 * 9)
    assert not _merge(reference, a, b)


def test_the_same_kind_of_problem_at_one_place_days_apart_needs_the_same_words(reference: Reference) -> None:
    # two complaints about one estate's management three days apart: the lift, then the gate
    lift = _case("hotline12345:1", "翠林苑物业不作为",
                 "翠林苑小区电梯经常坏，报修好几天都没人来，业主群里很多人都有意见，请求督促物业整改。",
                 address="光明大道88号翠林苑")
    gate = _case("mayor:2", "翠林苑物业服务差",
                 "翠林苑小区门禁形同虚设，外来人员随便进出，业主群里很多人都有意见，请求督促物业整改。",
                 address="光明大道88号翠林苑", hours=72)
    lift_again = _case("petition:3", "翠林苑电梯坏了没人修",
                       "翠林苑小区的电梯经常坏，报修好几天都没有人来修，业主群里很多人有意见，请求督促物业整改到位。",
                       address="光明大道88号翠林苑", hours=80)
    assert not _merge(reference, lift, gate)
    assert _merge(reference, lift, lift_again)


def test_the_problem_words_do_not_depend_on_the_process_hash_seed() -> None:
    # two place names of one length that overlap in the text: which one is cut out first decides the
    # words left, and a set's order changes with PYTHONHASHSEED from one process to the next
    probe = ("from casework.dedup import _problem_grams; "
             "print(sorted(_problem_grams('东能华府花园门口漏水', ['东能华府', '华府花园'])))")
    assert len(outputs_under_hash_seeds(probe)) == 1


@pytest.mark.parametrize("outage", [
    ("阳光花园停水", "阳光花园从早上开始整栋楼停水，到现在还没有来水，也没有任何通知",
     "家里没水", "阳光花园家里一滴水都没有，水龙头拧开什么也没有，老人孩子没法做饭"),
    ("阳光花园停电", "阳光花园从晚上八点开始停电，到现在还没有恢复，冰箱里的东西都坏了",
     "突然停电", "阳光花园整个小区都黑了，电梯也停了，老人被困在家里"),
])
def test_an_outage_told_in_other_words_by_two_residents_is_one_incident(
        reference: Reference, outage: tuple[str, str, str, str]) -> None:
    # the commonest mass incident: the words barely overlap, so the category has to carry it (the event
    # dictionary had none for an outage, and two residents' reports an hour apart stayed apart)
    title, words, other_title, other_words = outage
    first = _case("hotline12345:1", title, words, region="440311001001")
    second = _case("mayor:2", other_title, other_words, region="440311001001", hours=1)
    assert _merge(reference, first, second)


def test_an_outage_reported_from_different_buildings_is_one_incident(reference: Reference) -> None:
    # the buildings a water main or a substation serves each call about their own: naming different
    # ones contradicts nothing for an outage (area_wide in the event dictionary), as it does for a lift
    third = _case("hotline12345:1", "阳光花园停水", "阳光花园3栋从早上开始停水，30多户到现在还没有来水",
                  region="440311001001")
    fifth = _case("mayor:2", "家里没水", "阳光花园5栋家里没水，200多户都没法做饭，也没有任何通知",
                  region="440311001001", hours=1)
    assert _merge(reference, third, fifth)
    lift = _case("open311:3", "阳光花园电梯故障", "阳光花园3栋电梯坏了，老人上下楼很困难",
                 region="440311001001")
    other_lift = _case("mayor:4", "阳光花园电梯故障", "阳光花园5栋电梯坏了，老人上下楼很困难",
                       region="440311001001", hours=1)
    assert not _merge(reference, lift, other_lift)
    # an outage still has its own facts: two outages months apart in one estate are two
    arrears = _case("hotline12345:5", "阳光花园停电",
                    "阳光花园3栋欠费停电两个月了，物业说要交1200元才恢复供电", region="440311001001")
    other = _case("mayor:6", "阳光花园停电", "阳光花园5栋欠费停电三个月了，物业说要交3400元才恢复供电",
                  region="440311001001", hours=1)
    assert not _merge(reference, arrears, other)



def test_a_wage_dispute_and_its_legal_aid_application_are_one_matter(reference: Reference) -> None:
    # legal aid files the claim under its own class (讨薪法律援助), the petition under the dispute's
    # (拖欠工资): the event dictionary links the two (same_matter), so the same worker's two appeals
    # about one company's arrears merge on the little wording they share …
    petition = _case("petition:1", "反映永源俊公司拖欠工资问题",
                     "信访人来信反映：深圳市永源俊光电科技有限公司拖欠其2026年8月至10月工资，老板失联。")
    aid = _case("legalaid:2", "申请法律援助", "申请人在永源俊公司上班，公司拖欠三个月工资，老板联系不上，"
                "要求支付工资。", hours=50)
    first = signature(petition, reference, ("resident-1",))
    second = signature(aid, reference, ("resident-1",))
    assert set(first.categories) == {"02010101"}
    assert set(second.categories) == {"03010101"}
    assert decide(compare(first, second, reference)).merge
    # … while a link is no shared category: two workers' appeals need the words a shared one would
    other = signature(aid, reference, ("resident-2",))
    assert not decide(compare(first, other, reference)).merge
    # and a claim for a work injury at the same company is another matter
    injury = _case("legalaid:3", "申请法律援助", "申请人在永源俊公司上班时手被机器压伤，公司不给认定工伤。",
                   hours=50)
    assert not decide(compare(first, signature(injury, reference, ("resident-1",)), reference)).merge


def test_a_leak_between_two_flats_is_named_by_either_flat(reference: Reference) -> None:
    # the flat below calls the hotline about its ceiling (1203), the court names the flat above, where the
    # leak is (1303): one matter between two flats (between_floors in the event dictionary)
    call = _case("hotline12345:1", "反映邻居漏水问题", "市民来电反映：东能华府5栋1203楼上邻居家卫生间漏水，"
                 "导致其家天花板发霉，协商未果。", region="440311001001")
    court = _case("court:2", "相邻关系纠纷（张三诉李四）", "申请人张三称东能华府5栋1303房卫生间漏水，"
                  "楼下天花板墙面发霉，请求被申请人修复防水并赔偿损失。", region="440311001001", hours=48)
    first, second = signature(call, reference, ("resident-1",)), signature(court, reference, ("resident-1",))
    assert decide(compare(first, second, reference)).merge
    # two floors apart is another flat's leak; and for a matter not between flats one floor is another home
    two_up = replace(court, content=court.content.replace("1303", "1403"))
    assert not decide(compare(first, signature(two_up, reference, ("resident-1",)), reference)).merge
    assert conflict(facts("5栋1203"), facts("5栋1303"))
    assert not conflict(facts("5栋1203"), facts("5栋1303"), floors=True)
    assert conflict(facts("1203室"), facts("908室"), floors=True)
    assert not conflict(facts("908室"), facts("1008室"), floors=True)
    assert conflict(facts("5栋1203"), facts("6栋1303"), floors=True)


def test_two_sites_next_to_one_estate_are_two_places(reference: Reference) -> None:
    # residents name the estate they live in as a landmark (东能华府东边的…): it says where the site is,
    # not which; two sites beside one estate are two places, while the landmark of one report that is the
    # place of another still agrees
    east = _case("hotline12345:1", "反映工地噪音", "东能华府东边的光明人才住房项目工地夜间施工噪音大。",
                 region="440311001001")
    west = _case("mayor:2", "工地噪音", "东能华府西边的凤凰城市更新项目工地夜间施工噪音大。",
                 region="440311001001", hours=5)
    first, second = signature(east, reference, ()), signature(west, reference, ())
    assert first.near == ("东能华府",)
    assert Signature.load(first.dump()).near == ("东能华府",)
    assert compare(first, second, reference).place == -1.0
    assert not _merge(reference, east, west)
    site = _case("open311:3", "工地噪音", "光明人才住房项目工地每天半夜施工，噪音很大。", hours=5)
    assert _merge(reference, east, site)
    market = _case("hotline12345:4", "车辆乱停", "田寮路123号玉律农贸市场周边车辆长期占用人行道停放。",
                   region="440311001001")
    gate = _case("mayor:5", "车辆乱停", "玉律农贸市场周边车辆长期占用人行道停放，东能华府附近也是。",
                 region="440311001001", hours=5)
    assert compare(signature(market, reference, ()), signature(gate, reference, ()), reference).place == 1.0


def test_disputes_against_two_others_are_two_matters(reference: Reference) -> None:
    # one creditor, one sum, one week: two debtors are two loans; the channels name the other side in
    # their own ways (李四 / 李某, 深圳市永源俊光电科技有限公司 / 永源俊厂), which are one
    def loan(key: str, debtor: str, *, organisation: bool = False, hours: float = 0.0) -> StoredCase:
        case = _case(key, "民间借贷纠纷", "申请人王五借给对方五万元，到期未还，请求归还借款。",
                     region="440311001001", hours=hours)
        return replace(case, parties=(Party(role="申请人", name="王五"),
                                      Party(role="被申请人", name=debtor, is_organisation=organisation)))
    first = signature(loan("court:1", "赵六"), reference, ("resident-1",))
    other = signature(loan("court:2", "钱七", hours=48), reference, ("resident-1",))
    same = signature(loan("hotline12345:3", "赵某", hours=48), reference, ("resident-1",))
    assert first.against == ("p:赵",)
    assert Signature.load(first.dump()).against == ("p:赵",)
    assert not decide(compare(first, other, reference)).merge
    assert decide(compare(first, same, reference)).merge
    company = signature(loan("court:4", "深圳市永源俊光电科技有限公司", organisation=True), reference, ())
    factory = signature(loan("petition:5", "永源俊厂", organisation=True, hours=5), reference, ())
    assert company.against == factory.against == ("o:俊源",)
    # legal aid names the other side 对方当事人
    opponent = replace(loan("legalaid:6", "赵六"), parties=(Party(role="对方当事人", name="钱七"),))
    assert signature(opponent, reference, ()).against == ("p:钱",)

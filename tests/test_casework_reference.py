"""Reference data: regions, the event dictionary, departments; resolving places and classifying text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from casework.model import RegionLevel
from casework.reference import DATA_DIR, Reference
from connectors import ConfigError, Place
from tests.processes import outputs_under_hash_seeds

SHARED_PATHS = (  # COMMON.md's problem kinds, shared with the sandbox world
    "投诉建议/城市管理/市容环境/占道经营",
    "投诉建议/城市管理/市容环境/垃圾清运不及时",
    "投诉建议/城市管理/违法建设/违建搭建",
    "投诉建议/生态环境/噪声污染/施工噪声扰民",
    "投诉建议/生态环境/噪声污染/商业噪声扰民",
    "投诉建议/生态环境/大气污染/油烟扰民",
    "投诉建议/生态环境/水污染/河道污染",
    "投诉建议/交通运输/道路设施/路面破损",
    "投诉建议/交通运输/停车管理/乱停车",
    "投诉建议/住房建设/物业管理/物业服务质量",
    "投诉建议/住房建设/房屋安全/房屋漏水",
    "投诉建议/市场监管/食品安全/食品安全问题",
    "投诉建议/市场监管/消费维权/预付卡退费",
    "投诉建议/公共安全/消防安全/消防通道堵塞",
    "纠纷调解/劳动纠纷/劳动报酬/拖欠工资",
    "纠纷调解/劳动纠纷/工伤待遇/工伤赔偿",
    "纠纷调解/物业纠纷/物业费/物业费纠纷",
    "纠纷调解/邻里纠纷/相邻关系/相邻漏水纠纷",
    "纠纷调解/合同纠纷/租赁合同/房屋租赁纠纷",
    "纠纷调解/交通事故/损害赔偿/交通事故赔偿",
    "纠纷调解/婚姻家庭/离婚纠纷/离婚财产纠纷",
    "法律服务/法律援助/劳动争议/讨薪法律援助",
    "法律服务/法律援助/人身损害/人身损害赔偿援助",
    "法律服务/法律咨询/婚姻家庭/婚姻家庭咨询",
    "法律服务/法律咨询/合同/合同法律咨询",
    "心理服务/心理咨询/情绪困扰/焦虑抑郁疏导",
    "心理服务/危机干预/家庭矛盾/家庭矛盾心理疏导",
    "帮扶救助/社会救助/最低生活保障/低保申请",
    "帮扶救助/社会救助/临时救助/临时救助申请",
    "帮扶救助/困难帮扶/残疾人帮扶/残疾人补贴申请",
)
COMMUNITIES = {  # the shared regions file's lists, in order (their order gives the community codes)
    "440311001": "光明社区 东周社区 碧眼社区 翠湖社区 迳口社区 白花社区",
    "440311002": "公明社区 上村社区 下村社区 西田社区 李松蓢社区",
    "440311003": "楼村社区 新羌社区 圳美社区",
    "440311004": "凤凰社区 东坑社区 塘尾社区 甲子塘社区 塘家社区",
    "440311005": "玉律社区 田寮社区 长圳社区 红星社区",
    "440311006": "合水口社区 马山头社区 将石社区 薯田埔社区 新庄社区 石家社区 根竹园社区",
}
PATHS = list(SHARED_PATHS)


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.load()


def test_regions_follow_the_shared_codes(ref: Reference) -> None:
    [district] = ref.region_children(None)
    assert (district.id, district.name, district.level) == ("440311", "光明区", RegionLevel.DISTRICT)
    streets = ref.region_children("440311")
    assert [s.id for s in streets] == [f"44031100{n}" for n in range(1, 7)]
    assert ref.regions["440311005002"].name == "田寮社区"
    communities = [r for r in ref.regions.values() if r.level is RegionLevel.COMMUNITY]
    assert len(communities) == 30
    assert all(c.lat is not None and c.lng is not None for c in communities)
    for community in communities:
        grids = ref.region_children(community.id)
        assert 2 <= len(grids) <= 4
        assert all(g.name.startswith(community.name) and g.id.startswith(community.id) for g in grids)
    for code, names in COMMUNITIES.items():
        assert [c.name for c in ref.region_children(code)] == names.split()
    chain = [r.name for r in ref.region_ancestors("44031100500201")]
    assert chain == ["田寮社区第一网格", "田寮社区", "玉塘街道", "光明区"]
    assert "44031100500201" in ref.region_descendant_ids("440311005")
    assert ref.region_descendant_ids("nowhere") == set()


def test_the_dictionary_has_four_levels_and_every_shared_path(ref: Reference) -> None:
    tops = [c.name for c in ref.category_children(None)]
    assert tops == ["投诉建议", "纠纷调解", "法律服务", "心理服务", "帮扶救助"]
    assert 150 <= len(ref.categories) <= 300
    for category in ref.categories.values():
        assert re.fullmatch(rf"(\d\d){{{category.level}}}", category.id)
        assert category.parent_id == (category.id[:-2] or None)
        assert category.keywords, category.name
    paths = {ref.category_path(cid): cid for cid in ref.categories}
    assert [p for p in PATHS if p not in paths] == []
    assert len(PATHS) == 30
    leaf = paths["投诉建议/城市管理/市容环境/占道经营"]
    assert leaf == "01010101"
    assert [c.id for c in ref.category_ancestors(leaf)] == ["01010101", "010101", "0101", "01"]
    assert leaf in ref.category_descendant_ids("0101")


def test_departments(ref: Reference) -> None:
    assert 20 <= len(ref.departments) <= 30
    labor = ref.departments["dept-labor"]
    assert (labor.short_name, labor.kind) == ("区人力资源局", "district_bureau")
    streets = [d for d in ref.departments.values() if d.kind == "street_office"]
    assert sorted(d.region_id or "" for d in streets) == [f"44031100{n}" for n in range(1, 7)]
    assert ref.departments["dept-court"].name == "深圳市光明区人民法院"


@pytest.mark.parametrize(("place", "expected"), [
    (Place(street="玉塘街道", community="田寮社区"), "440311005002"),
    (Place(community="田寮"), "440311005002"),
    (Place(community="田寮社區"), "440311005002"),
    (Place(community="光明区玉塘街道田寮社区居委会"), "440311005002"),
    (Place(street="玉塘"), "440311005"),
    (Place(street="光明"), "440311001"),
    (Place(community="光明"), "440311001001"),
    (Place(address="深圳市光明区公明街道李松蓢社区松白路3号"), "440311002005"),
    (Place(grid="田寮社区第二网格"), "44031100500202"),
    (Place(community="田寮社区", grid="第3网格"), "44031100500203"),
    (Place(lat=22.7215, lng=113.9305), "440311005002"),
    (Place(street="玉塘街道", lat=22.704, lng=113.921), "440311005003"),
    (Place(address="光明区华夏路一带"), "440311"),
    (Place(address="龙华区观澜街道"), None),
    (Place(lat=22.54, lng=114.06), None),
    (Place(), None),
])
def test_resolve_place(ref: Reference, place: Place, expected: str | None) -> None:
    assert ref.resolve_place(place) == expected


@pytest.mark.parametrize(("hint", "title", "content", "path"), [
    ("占道经营", "", "", "投诉建议/城市管理/市容环境/占道经营"),
    ("投诉建议/生态环境/噪声污染/施工噪声扰民", "", "", "投诉建议/生态环境/噪声污染/施工噪声扰民"),
    ("01010101", "", "", "投诉建议/城市管理/市容环境/占道经营"),
    ("噪音扰民", "楼下饭店", "晚上音响声音很大", "投诉建议/生态环境/噪声污染/商业噪声扰民"),
    ("噪音扰民", "", "", "投诉建议/生态环境/噪声污染"),
    ("婚姻家庭", "", "想咨询离婚后财产怎么分", "法律服务/法律咨询/婚姻家庭/婚姻家庭咨询"),
    ("城市管理", "路边摆摊", "占道经营", "投诉建议/城市管理/市容环境/占道经营"),
    (None, "工地夜間施工噪音擾民", "晚上十二點還在打樁", "投诉建议/生态环境/噪声污染/施工噪声扰民"),
    (None, "公司拖欠三个月工资", "老板跑路，十几个工人讨薪", "纠纷调解/劳动纠纷/劳动报酬/拖欠工资"),
    (None, "申请法律援助", "被拖欠工资，想申请法律援助", "法律服务/法律援助/劳动争议/讨薪法律援助"),
    (None, "健身房跑路", "办的会员卡不给退费", "投诉建议/市场监管/消费维权/预付卡退费"),
    ("其他", "反映一下", "消防通道被车堵住了", "投诉建议/公共安全/消防安全/消防通道堵塞"),
    (None, "你好", "谢谢", None),
    # a broad class's word (小区, of 住房建设) weighs as much as the leaf's own: the leaf's tells more
    (None, "小区停电", "", "投诉建议/公用事业/供电服务/停电"),
    (None, "小区没水", "", "投诉建议/公用事业/供水服务/停水"),
    # 小区 names where it happened, not what: a post that names its estate is no housing matter for it
    (None, "东能华府整个小区", "东能华府整个小区没电了，冰箱里东西都坏了", "投诉建议/公用事业/供电服务/停电"),
    # 楼上 says whose flat, not what went wrong: the neighbours' noise is theirs, not a leak
    (None, "楼上天天吵", "楼上邻居每天半夜跺脚拖椅子", "纠纷调解/邻里纠纷/生活干扰/噪音邻里纠纷"),
    (None, "外墙瓷砖掉落", "楼上的外墙瓷砖掉下来差点砸到人", "投诉建议/住房建设/房屋安全/危房隐患"),
])
def test_classify(ref: Reference, hint: str | None, title: str, content: str, path: str | None) -> None:
    found = ref.classify(hint, title, content)
    assert (found and ref.category_path(found)) == path


def test_every_leaf_name_classifies_to_itself(ref: Reference) -> None:
    leaves = [c for c in ref.categories.values() if not ref.category_children(c.id)]
    wrong = [c.name for c in leaves if ref.classify(c.name, "", "") != c.id
             and [x.id for x in ref.categories.values() if x.name == c.name] == [c.id]]
    assert wrong == []


def test_a_broken_file_lists_every_problem(tmp_path: Path) -> None:
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"regions": [
        {"id": "1", "name": "某区", "level": "DISTRICT", "parent_id": None},
        {"id": "2", "name": "某街道", "level": "STREET", "parent_id": "9"},
        {"id": "3", "name": "某社区", "level": "VILLAGE", "parent_id": "2"},
        {"id": "4", "name": "某网格", "level": "GRID", "parent_id": "1", "lat": 1.0, "lng": None}]}),
        encoding="utf-8")
    categories = tmp_path / "dict.yaml"
    categories.write_text("classes:\n  - {code: '1', name: 投诉建议}\n  - {code: '02', name: 投诉建议}\n",
                          encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Reference.load(regions_path=regions, categories_path=categories,
                       departments_path=tmp_path / "missing.yaml")
    problems = "\n".join(caught.value.problems)
    for fragment in ("unknown parent '9'", "VILLAGE", "lat and lng", "GRID under a DISTRICT", "code '1'",
                     "duplicate name", "missing.yaml"):
        assert fragment in problems
    assert DATA_DIR.joinpath("regions.json").exists()


def test_blanking_region_names_does_not_depend_on_the_process_hash_seed() -> None:
    # a city's own regions file may hold two names of one length that overlap in a text: which one is
    # blanked out first decides whether 光明 (光明社区's short name) is left to be found
    probe = """
from types import SimpleNamespace
from casework.matching import PlaceMatcher
from casework.model import RegionLevel as L
from casework.reference import Region
from connectors import Place
rows = [("d", "光明区", L.DISTRICT, None), ("s", "光明街道", L.STREET, "d"),
        ("c1", "光明社区", L.COMMUNITY, "s"), ("c2", "东坑社区", L.COMMUNITY, "s"),
        ("g", "道口网格", L.GRID, "c2")]
regions = {i: Region(i, None, name, level, parent, None, None) for i, name, level, parent in rows}
print(PlaceMatcher(SimpleNamespace(regions=regions)).resolve(Place(community="光明街道口网格")))
"""
    assert len(outputs_under_hash_seeds(probe)) == 1


def _load_dictionary(tmp_path: Path, text: str) -> Reference:
    dictionary, departments = tmp_path / "events.yaml", tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    dictionary.write_text(text, encoding="utf-8")
    return Reference.load(categories_path=dictionary, departments_path=departments)


@pytest.mark.parametrize("flag", ["area_wide", "between_floors"])
def test_a_mark_holds_beneath_the_node_that_sets_it(tmp_path: Path, flag: str) -> None:
    text = ("classes:\n"
            "  - {code: '01', name: 投诉建议, children: [\n"
            f"      {{code: '0101', name: 公用事业, {flag}: true,\n"
            "       children: [{code: '010101', name: 供水服务}]},\n"
            f"      {{code: '0102', name: 物业管理, {flag}: yes please}}]}}\n")
    with pytest.raises(ConfigError, match=rf"{flag} must be true or false"):
        _load_dictionary(tmp_path, text)
    loaded = _load_dictionary(tmp_path, text.replace("yes please", "false"))
    marked = [getattr(loaded.categories[c], flag) for c in ("01", "0101", "010101", "0102")]
    assert marked == [False, True, True, False]


def test_same_matter_links_hold_both_ways_and_name_known_codes(tmp_path: Path) -> None:
    text = ("classes:\n"
            "  - {code: '02', name: 纠纷调解, children: [{code: '0201', name: 劳动纠纷}]}\n"
            "  - {code: '03', name: 法律服务, children: [\n"
            "      {code: '0301', name: 法律援助, same_matter: ['0201', '0999']},\n"
            "      {code: '0302', name: 法律咨询, same_matter: 0201}]}\n")
    with pytest.raises(ConfigError) as caught:
        _load_dictionary(tmp_path, text)
    assert any("same_matter names unknown code '0999'" in p for p in caught.value.problems)
    assert any("(法律咨询): same_matter must be a list" in p for p in caught.value.problems)
    loaded = _load_dictionary(tmp_path, text.replace(", '0999'", "").replace("same_matter: 0201",
                                                                             "same_matter: ['0201']"))
    assert loaded.categories["0201"].same_matter == ("0301", "0302")
    assert loaded.categories["0301"].same_matter == ("0201",)

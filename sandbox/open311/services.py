"""The Open311 endpoint's service list: one GeoReport v2 service per city problem kind, with the agency
responsible, a service notice and, for some, a service definition (``metadata: true``).

A label the catalogue does not know (a hand-made ticket's) gets a service of its own (codes 9xx), so
every ticket has a service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Attribute", "Catalogue", "Service"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a service definition (GeoReport v2 ``attributes[]``)."""

    code: str
    description: str
    datatype: str                                   # string, number, datetime, text, singlevaluelist …
    required: bool = False
    values: tuple[tuple[str, str], ...] = ()        # (key, name) for the value lists
    datatype_description: str = ""

    def render(self, order: int) -> dict[str, Any]:
        return {"variable": True, "code": self.code, "datatype": self.datatype, "required": self.required,
                "datatype_description": self.datatype_description or None, "order": order,
                "description": self.description,
                "values": [{"key": key, "name": name} for key, name in self.values]}


@dataclass(frozen=True, slots=True)
class Service:
    code: str
    name: str
    group: str
    agency: str
    description: str
    keywords: str
    days: int = 2                                   # working promise: expected_datetime = requested + days
    attributes: tuple[Attribute, ...] = ()

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)

    @property
    def notice(self) -> str:
        return f"{self.agency}将在{self.days}个工作日内处理"

    def listing(self) -> dict[str, Any]:
        """The service as ``GET /services`` lists it."""
        return {"service_code": self.code, "service_name": self.name, "description": self.description,
                "metadata": self.metadata, "type": "realtime", "keywords": self.keywords, "group": self.group}

    def definition(self) -> dict[str, Any]:
        """The service definition (``GET /services/{service_code}``)."""
        return {"service_code": self.code,
                "attributes": [a.render(i) for i, a in enumerate(self.attributes, start=1)]}


_CITY_MGMT = "光明区城市管理和综合执法局"
_ECOLOGY = "深圳市生态环境局光明管理局"
SERVICES: tuple[Service, ...] = (
    Service("101", "占道经营", "城市管理", _CITY_MGMT, "流动摊贩、店外经营占用道路或人行道",
            "摆摊,占道,流动摊贩",
            attributes=(Attribute("stall_type", "摊位类型", "singlevaluelist", values=(
                ("mobile", "流动摊贩"), ("shopfront", "店外经营"), ("night_market", "夜市摊点"))),)),
    Service("102", "垃圾清运不及时", "城市管理", _CITY_MGMT, "生活垃圾、建筑垃圾未及时清运",
            "垃圾,清运,异味", 1),
    Service("103", "违建搭建", "城市管理", "光明区规划土地监察局", "违法搭建、加建、改建",
            "违建,搭建,加层", 5),
    Service("201", "施工噪声扰民", "生态环境", _ECOLOGY, "建筑工地施工噪声，含夜间施工",
            "施工,噪音,夜间",
            attributes=(Attribute("period", "噪声时段", "singlevaluelist", required=True, values=(
                ("night", "夜间（22:00-次日7:00）"), ("noon", "午间（12:00-14:00）"), ("day", "白天"))),)),
    Service("202", "商业噪声扰民", "生态环境", _ECOLOGY, "商铺、娱乐场所音响或喧哗噪声",
            "噪音,KTV,音响"),
    Service("203", "油烟扰民", "生态环境", _ECOLOGY, "餐饮油烟直排、异味", "油烟,餐馆,排烟"),
    Service("204", "河道污染", "生态环境", "光明区水务局", "河道、排水渠污水、漂浮物",
            "河道,污水,黑臭", 3),
    Service("301", "路面破损", "交通运输", "光明区交通运输局", "路面坑洼、井盖缺失、人行道破损",
            "坑洼,井盖,路面", 3,
            attributes=(Attribute("severity", "破损程度", "singlevaluelist", values=(
                ("minor", "轻微"), ("major", "严重，影响通行"), ("danger", "危险，需立即处置"))),)),
    Service("302", "乱停车", "交通运输", "深圳市公安局交通警察支队光明大队", "机动车违停、占用消防或盲道",
            "违停,乱停,占道停车", 1,
            attributes=(Attribute("plate", "车牌号（选填）", "string",
                                  datatype_description="如 粤B12345"),)),
    Service("401", "消防通道堵塞", "公共安全", "光明区消防救援大队", "消防通道被车辆、杂物占用",
            "消防通道,堵塞", 1),
)


class Catalogue:
    """The endpoint's services, with one made for every label the fixed list does not have."""

    def __init__(self, labels: Iterable[tuple[str, ...]] = ()) -> None:
        self.by_code: dict[str, Service] = {s.code: s for s in SERVICES}
        self.by_name: dict[str, Service] = {s.name: s for s in SERVICES}
        for path in sorted({tuple(p) for p in labels if p}):
            if path[-1] not in self.by_name:
                self._add(path)

    def _add(self, path: tuple[str, ...]) -> Service:
        extra = len(self.by_code) - len(SERVICES) + 1
        group = path[1] if len(path) > 1 else "其他"
        service = Service(f"9{extra:02d}", path[-1], group, "光明区政务服务数据管理局", f"{path[-1]}相关诉求",
                          path[-1])
        self.by_code[service.code] = service
        self.by_name[service.name] = service
        return service

    def for_label(self, path: tuple[str, ...]) -> Service:
        label = path[-1] if path else "其他"
        return self.by_name.get(label) or self._add(path or ("其他",))

    def all(self) -> list[Service]:
        return sorted(self.by_code.values(), key=lambda s: s.code)

"""The sandbox's shared, seeded world: residents, incidents, and the tickets they raise per channel.

One incident may be reported through several channels, by the same or different residents,
in different words. Each channel app renders :class:`Ticket` s in its own format; ground truth
(which tickets are one incident) is served only at ``/__sandbox/truth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CHANNELS = ("hotline12345", "mayor", "court", "legalaid", "petition", "open311")


@dataclass(frozen=True, slots=True)
class Resident:
    resident_id: str
    name: str
    phone: str
    id_number: str


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    street: str             # 街道 name, e.g. 玉塘街道
    community: str          # 社区 name
    place_name: str         # named estate, road, company or school, e.g. 东能华府
    address: str
    lat: float
    lng: float
    top_class: str          # one of 投诉建议 纠纷调解 法律服务 心理服务 帮扶救助
    category_path: tuple[str, ...]  # sandbox's own labels, top to leaf, e.g. (投诉建议, 城市管理, 市容环境, 占道经营)
    problem: str            # short problem key, e.g. 占道经营
    group: bool = False     # a group matter (群体性), e.g. wage arrears of many workers
    head_count: int = 1


@dataclass(slots=True)
class Ticket:
    """One report of an incident through one channel. Times are aware UTC datetimes."""

    channel: str
    source_id: str          # in the channel's own id format
    incident_id: str
    resident: Resident
    title: str
    content: str
    category_path: tuple[str, ...]
    street: str | None
    community: str | None
    address: str | None
    lat: float | None
    lng: float | None
    received_at: datetime
    updated_at: datetime
    stage: str              # generic lifecycle: new, accepted, processing, done, closed, rejected
    arrives_after: float = 0.0   # seconds after the sandbox started; 0 = already there at start
    extra: dict[str, object] = field(default_factory=dict)
    other_party: Resident | None = None  # the respondent (被申请人) for disputes


@dataclass(slots=True)
class World:
    """Everything the sandbox channels serve, generated from one seed."""

    seed: int
    now: datetime
    residents: list[Resident]
    incidents: list[Incident]
    tickets: list[Ticket]

    def tickets_for(self, channel: str) -> list[Ticket]:
        return [t for t in self.tickets if t.channel == channel]

    def truth(self) -> dict[str, dict[str, str]]:
        """channel → source id → incident id."""
        out: dict[str, dict[str, str]] = {}
        for t in self.tickets:
            out.setdefault(t.channel, {})[t.source_id] = t.incident_id
        return out


def generate_world(seed: int = 7, now: datetime | None = None, *, incidents: int = 400) -> World:
    """Generate the seeded world. Same ``seed`` and ``now`` → the same world, ticket for ticket."""
    raise NotImplementedError  # filled in by the world generator

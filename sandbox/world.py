"""The sandbox's shared, seeded world: residents, incidents, and the tickets they raise per channel.

One incident may be reported through several channels, by the same or different residents,
in different words. Each channel app renders :class:`Ticket` s in its own format; ground truth
(which tickets are one incident) is served only at ``/__sandbox/truth``.

:func:`generate_world` builds it (the work is done in :mod:`sandbox.worldgen`, with the data in
:mod:`sandbox.places`, :mod:`sandbox.people`, :mod:`sandbox.problems` and :mod:`sandbox.phrasing`).

The demo citizen
    Resident ``R-CITIZEN`` (陈晓明, 玉塘街道) always exists, with the same phone and national ID in
    every channel. He raises appeals through 12345, petition, legalaid and mayor: wage arrears at his
    employer (a group matter; 12345 call, group petition, legal-aid application for 讨薪), a leaking
    ceiling at home (12345) and his estate's blocked fire lane (mayor). The gateway's demo
    ``citizen`` account is matched to him.

``Ticket.extra`` keys per channel (values in Chinese where they are labels)
    * hotline12345: ``appeal_type`` 诉求类型 (投诉/求助/咨询/建议);
    * petition: ``form`` 信访形式 (来信/来访/网上/电话), ``head_count`` 人数 (int, >1 for group petitions);
    * legalaid: ``aid_type`` 援助事项类别 (e.g. 劳动仲裁代理, 民事诉讼代理, 法律咨询),
      ``applicant_type`` 申请人类别 (e.g. 农民工, 低保户, 残疾人, 其他经济困难人员);
    * court: ``claim_amount`` 标的额 (int, yuan), ``cause`` 案由 (e.g. 劳动争议, 物业服务合同纠纷);
    * open311: ``board`` (bool: a message-board post, which has no structured location);
    * mayor: none;
    * shuji (书记在线): ``qr_level`` 二维码层级 (区/街道/社区: whose QR code the resident scanned),
      ``major`` (bool: a major item, due within 3 working days rather than the same day);
    * juzhang (局长信箱): ``bureau`` 局 (the bureau whose head the letter is addressed to).

Evaluation only (never served by a channel): ``Ticket.eval_split`` and ``Incident.split``
("tune" or "holdout": holdout incidents sit at holdout places and may use holdout phrasings that no tune
ticket uses), ``Incident.negative_of`` (the incident this one is a deliberate hard negative of).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_BEIJING = timezone(timedelta(hours=8))  # the sandbox city's clock; China keeps no daylight saving

CHANNELS = ("hotline12345", "mayor", "court", "legalaid", "petition", "open311", "shuji", "juzhang")


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
    # sandbox's own labels, top to leaf, e.g. (投诉建议, 城市管理, 市容环境, 占道经营)
    category_path: tuple[str, ...]
    problem: str            # short problem key, e.g. 占道经营
    group: bool = False     # a group matter (群体性), e.g. wage arrears of many workers
    head_count: int = 1
    respondent: Resident | None = None  # the other party of a dispute (company or person), if any
    split: str = "tune"     # evaluation split: "tune" or "holdout"
    negative_of: str | None = None  # a hard negative: looks like that incident, but is not it


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
    eval_split: str = "tune"  # evaluation only, never served: "tune" or "holdout"


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

    def evaluation(self) -> dict[str, dict[str, Any]]:
        """Ground truth for evaluating dedup (served at ``/__sandbox/truth``): each incident's reports,
        each incident's split, and which incidents are hard negatives of which."""
        reports: dict[str, list[dict[str, str]]] = {i.incident_id: [] for i in self.incidents}
        for t in self.tickets:
            reports[t.incident_id].append({"channel": t.channel, "source_id": t.source_id})
        return {"incidents": reports,
                "splits": {i.incident_id: i.split for i in self.incidents},
                "hard_negatives": {i.incident_id: i.negative_of for i in self.incidents if i.negative_of}}


def generate_world(seed: int = 7, now: datetime | None = None, *, incidents: int = 400,
                   days: float = 60) -> World:
    """Generate the seeded world. Same ``seed`` and ``now`` → the same world, ticket for ticket.

    Args:
        seed: seeds every random choice (``random.Random`` streams derived from it; nothing global).
        now: the moment the world is generated for (aware; naive is taken as UTC); tickets were received
            over the ~``days`` days before it, and about ``incidents / 10`` arrive after it
            (``Ticket.arrives_after`` seconds into the sandbox's run). Default: the current time, to the
            second — pass it explicitly for a repeatable world.
        incidents: how many incidents (real-world matters) the six first channels share, at least 4
            (the demo citizen's three and one more); ~1.3 tickets each. 书记在线 and 局长信箱 add
            ``worldgen.LEADER_SHARE`` of that many of their own.
            Knobs and the split design: :mod:`sandbox.worldgen`.
        days: how far back the world goes (60: the demo's month or two; a larger world over more days
            keeps the same density, as a real store grows by months of appeals, not by denser ones:
            its latest 60 days are the demo's, the days before them evenly spread).
    """
    from sandbox.worldgen import generate  # the generator builds on these dataclasses

    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return generate(seed, now, incidents, days)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant for ``--now`` (naive is taken as UTC); ``ValueError`` names what was wrong."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date and time: {text!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def week_start(at: datetime | None = None) -> datetime:
    """The latest Monday 00:00 Beijing time at or before ``at`` (default: now), as an aware UTC datetime.

    The world a seed makes depends on the time of week it is generated at (ticket times, stages and the
    mix of reports move with it), so worlds generated on different days are different samples. Worlds
    generated whole weeks apart are the same world moved by those weeks; only what spells a date (ID
    numbers' birthdays, date-stamped source ids) differs. A figure measured on ``week_start()``'s world
    is therefore comparable from one day to the next, and the world stays within the last week.
    """
    at = (at or datetime.now(UTC)).astimezone(_BEIJING)
    monday = (at - timedelta(days=at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.astimezone(UTC)

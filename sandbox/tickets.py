"""Turns the world's reports into channel tickets: wording, labels, location, lifecycle, extras and ids.

* Location by channel: 12345 and Open311 app reports carry coordinates (a few tens of metres of geocoding
  noise); Open311 message-board posts (``BOARD_SHARE``) carry no location at all, only the text names the
  place; the district-head hotline, petitions, the court and legal aid carry street, community and address
  but no coordinates.
* Labels: the incident's kind, except at legal aid, where a dispute becomes the aid kind it is brought as
  (拖欠工资 → 讨薪法律援助), and ``MISLABEL_RATE`` of complaint tickets filed under a sibling kind.
* Script: one Open311 post in ``TRADITIONAL_EVERY`` is written in traditional characters.
* Lifecycle by age: recent tickets are new or accepted, older ones processing, done or closed; a few are
  rejected. Petitions, the court and legal aid receive in office hours (Beijing time, weekdays).
* Source ids in each channel's own format, numbered in order of receipt.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sandbox.phrasing import Voice, compose
from sandbox.places import Place
from sandbox.problems import KINDS, Kind, kind_of
from sandbox.world import Incident, Resident, Ticket

__all__ = ["BOARD_SHARE", "MISLABEL_RATE", "TRADITIONAL_EVERY", "Spec", "TicketMaker"]

BEIJING = ZoneInfo("Asia/Shanghai")
BOARD_SHARE = 0.5
MISLABEL_RATE = 0.03
REJECT_RATE = 0.05
TRADITIONAL_EVERY = 20   # one Open311 post in 20 is written in traditional characters
_OFFICE = ("petition", "court", "legalaid")
_STAGES = (  # (max age in days, stages, weights)
    (0.25, ("new", "accepted"), (7, 3)),
    (2, ("new", "accepted", "processing"), (1, 4, 5)),
    (7, ("accepted", "processing", "done"), (1, 6, 3)),
    (20, ("processing", "done", "closed"), (25, 45, 30)),
    (1e9, ("processing", "done", "closed"), (5, 20, 75)),
)
_SPAN_DAYS = {"accepted": 1, "processing": 6, "done": 15, "closed": 30, "rejected": 5}
_VIA = (("来信", "来访", "网上", "电话"), (25, 35, 30, 10))
_BUREAUS = {"城市管理": "区城市管理和综合执法局", "住房建设": "区住房和建设局", "交通运输": "区交通运输局",
            "生态环境": "区生态环境分局", "市场监管": "区市场监督管理局", "教育": "区教育局"}
_APPLICANTS = ("其他经济困难人员", "低保户", "残疾人", "老年人", "农民工")


@dataclass(frozen=True, slots=True)
class Spec:
    """One report of one incident, before it is a ticket."""

    incident: Incident
    kind: Kind
    place: Place
    facts: Mapping[str, int]
    channel: str
    resident: Resident
    at: datetime
    arrives_after: float = 0.0


class TicketMaker:
    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self._posts = 0

    def make(self, specs: Iterable[Spec]) -> list[Ticket]:
        tickets = [self.ticket(spec) for spec in specs]
        _assign_ids(self.rng, tickets)
        return sorted(tickets, key=lambda t: (t.received_at, t.channel, t.source_id))

    def ticket(self, spec: Spec) -> Ticket:
        rng, incident = self.rng, spec.incident
        label = self.label(spec)
        at = spec.at.replace(microsecond=0)
        received = at if spec.arrives_after else self.office_hours(spec.channel, at)
        stage, updated = ("new", received) if spec.arrives_after else self.lifecycle(received)
        via = rng.choices(*_VIA)[0] if spec.channel == "petition" else ""
        if via and incident.group:
            via = "来访" if rng.random() < 0.7 else via
        voice = Voice(spec.channel, spec.kind.problem, label.problem, spec.place, spec.resident.name,
                      incident.respondent, incident.group, incident.head_count, spec.facts,
                      incident.split == "holdout", via=via, appeal=spec.kind.appeal,
                      cause=spec.kind.cause or "", traditional=self.traditional(spec.channel))
        title, content = compose(rng, voice)
        street, community, address, lat, lng = self.location(spec)
        return Ticket(
            channel=spec.channel, source_id="", incident_id=incident.incident_id, resident=spec.resident,
            title=title, content=content, category_path=label.path, street=street, community=community,
            address=address, lat=lat, lng=lng, received_at=received, updated_at=updated, stage=stage,
            arrives_after=spec.arrives_after, extra=self.extras(spec, label, via, board=street is None),
            other_party=incident.respondent if spec.channel in _OFFICE else None, eval_split=incident.split)

    def traditional(self, channel: str) -> bool:
        """Every ``TRADITIONAL_EVERY``-th Open311 post is in traditional characters."""
        if channel != "open311":
            return False
        self._posts += 1
        return self._posts % TRADITIONAL_EVERY == TRADITIONAL_EVERY // 2

    def label(self, spec: Spec) -> Kind:
        kind = spec.kind
        if spec.channel == "legalaid" and kind.aid:
            return kind_of(kind.aid)
        if spec.channel in ("hotline12345", "mayor", "open311") and self.rng.random() < MISLABEL_RATE:
            siblings = [k for k in KINDS if k.path[:2] == kind.path[:2] and k is not kind]
            return self.rng.choice(siblings) if siblings else kind
        return kind

    def office_hours(self, channel: str, at: datetime) -> datetime:
        """Petitions, the court and legal aid register on weekdays 9:00–17:30 Beijing time."""
        if channel not in _OFFICE:
            return at
        local = at.astimezone(BEIJING)
        while local.weekday() >= 5:
            local -= timedelta(days=1)
        if not 9 <= local.hour < 17:
            local = local.replace(hour=self.rng.randint(9, 16), minute=self.rng.randint(0, 59))
        moved = local.astimezone(at.tzinfo)
        return moved if moved < self.now - timedelta(minutes=5) else at

    def lifecycle(self, received: datetime) -> tuple[str, datetime]:
        rng = self.rng
        age = (self.now - received) / timedelta(days=1)
        stages, weights = next((s, w) for limit, s, w in _STAGES if age < limit)
        stage = rng.choices(stages, weights=weights)[0]
        if age >= 1 and rng.random() < REJECT_RATE:
            stage = "rejected"
        if stage == "new":
            return stage, received
        span = timedelta(days=min(age, _SPAN_DAYS[stage]) * rng.uniform(0.1, 1.0))
        updated = min(received + max(span, timedelta(minutes=5)), self.now)
        return stage, updated.replace(microsecond=0)

    def location(self, spec: Spec) -> tuple[str | None, str | None, str | None, float | None, float | None]:
        rng, place = self.rng, spec.place
        if spec.channel == "open311" and rng.random() < BOARD_SHARE:
            return None, None, None, None, None
        address = rng.choice((place.address, f"光明区{place.street}{place.address}",
                              f"深圳市光明区{place.street}{place.community}{place.address}"))
        community: str | None = place.community
        if spec.channel == "hotline12345" and rng.random() < 0.05:
            community = None  # the operator did not fill it in
        if spec.channel in ("hotline12345", "open311"):
            lat = round(place.lat + rng.gauss(0, 0.0003), 6)
            lng = round(place.lng + rng.gauss(0, 0.0003), 6)
            return place.street, community, address, lat, lng
        return place.street, community, address, None, None

    def extras(self, spec: Spec, label: Kind, via: str, *, board: bool) -> dict[str, object]:
        rng, incident = self.rng, spec.incident
        if spec.channel == "hotline12345":
            return {"appeal_type": spec.kind.appeal}
        if spec.channel == "petition":
            return {"form": via, "head_count": incident.head_count if incident.group else 1}
        if spec.channel == "legalaid":
            labour = spec.kind.party == "employer"
            applicant = "农民工" if labour and rng.random() < 0.8 else rng.choice(_APPLICANTS[:4])
            aid_type = label.aid_type or spec.kind.aid_type or "法律咨询"
            return {"aid_type": aid_type, "applicant_type": applicant}
        if spec.channel == "court":
            return {"claim_amount": spec.facts["amount"], "cause": spec.kind.cause or "其他纠纷"}
        if spec.channel == "open311":
            return {"board": board}
        if spec.channel == "shuji":
            level = rng.choices(("社区", "街道", "区"), weights=(6, 3, 1))[0]
            return {"qr_level": level, "major": level == "区" or incident.group}
        if spec.channel == "juzhang":
            return {"bureau": _BUREAUS.get(spec.kind.path[1], "区政府办公室")}
        return {}


# channel → (counter key of a Beijing-time receipt, (first number range), (step range), id format)
_IDS: dict[str, tuple[str, tuple[int, int], tuple[int, int], str]] = {
    "hotline12345": ("%Y%m%d", (0, 40), (1, 25), "GD{day}{n:04d}"),
    "petition": ("%Y%m%d", (0, 20), (1, 6), "XF440311-{day}-{n:04d}"),
    "mayor": ("%Y", (1000, 1400), (1, 30), "QZXX-{year}-{n:06d}"),
    "court": ("%Y", (800, 1200), (1, 9), "({year})粤0311民诉前调{n}号"),
    "legalaid": ("%Y", (300, 600), (1, 7), "FY-440311-{year}-{n:04d}"),
    "open311": ("", (100, 400), (1, 9), "311-{n:06d}"),
    "shuji": ("%Y", (100, 300), (1, 5), "SJZX{year}{n:06d}"),
    "juzhang": ("%Y%m%d", (0, 10), (1, 3), "JZXX-{day}-{n:03d}"),
}


def _assign_ids(rng: random.Random, tickets: list[Ticket]) -> None:
    """Source ids in each channel's format, numbered in order of receipt (per day or year where the
    format has one)."""
    by_channel: dict[str, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        by_channel[ticket.channel].append(ticket)
    for channel in sorted(by_channel):
        key_format, first, step, id_format = _IDS[channel]
        counters: dict[str, int] = {}
        for ticket in sorted(by_channel[channel], key=lambda t: (t.received_at, t.incident_id)):
            local = ticket.received_at.astimezone(BEIJING)
            key = local.strftime(key_format) if key_format else ""
            counters[key] = counters.get(key, rng.randint(*first)) + rng.randint(*step)
            ticket.source_id = id_format.format(day=f"{local:%Y%m%d}", year=local.year, n=counters[key])

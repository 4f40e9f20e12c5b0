"""Generates the sandbox world: incidents at named places, the reports residents make of them, tickets.

Knobs (module constants, and ``incidents`` of :func:`generate`):

* ``CROSS_CHANNEL_RATE`` — share of ordinary incidents reported through a second channel (a third one
  for ``THIRD_CHANNEL_RATE`` of those); together with the demo citizen's and live follow-ups, 15–25% of
  incidents end up in two or more channels;
* ``SAME_CHANNEL_RATE`` — share reported twice in one channel by different residents (group matters more);
* ``SAME_RESIDENT_RATE`` — share of cross-channel reports made by the first reporter again;
* ``HARD_NEGATIVE_SHARE`` — incidents made to look like another one (same kind at another place in the same
  community, or another kind at the same place, within a day and a half) without being it;
* ``ARRIVAL_SHARE`` — tickets arriving while the sandbox runs (20 s apart first, all within 900 s); some
  are new incidents, some further reports of recent ones;
* ``DAYS`` — how far back the world goes by default (denser towards ``now``; ``days`` of :func:`generate`
  changes it: a larger world spread over more days keeps its density);
* ``LEADER_SHARE``, ``LEADER_CROSS_RATE`` — 书记在线 and 局长信箱 (the channels added later): incidents
  raised only there, and city or housing incidents raised there as well. They are generated after
  everything else from streams of their own, so the other six channels' tickets do not change with them.

Everything is drawn from ``random.Random`` instances seeded from ``seed`` (one stream per concern), so
the same seed and ``now`` give the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.people import CITIZEN, PersonFactory
from sandbox.places import Place, build_gazetteer
from sandbox.problems import KINDS, Kind, kind_of
from sandbox.tickets import Spec, TicketMaker
from sandbox.world import Incident, Resident, Ticket, World

__all__ = ["generate"]

DAYS = 60
CROSS_CHANNEL_RATE = 0.19
THIRD_CHANNEL_RATE = 0.25
SAME_CHANNEL_RATE = 0.06
SAME_RESIDENT_RATE = 0.5
REUSE_RESIDENT_RATE = 0.12
HARD_NEGATIVE_SHARE = 0.1
ARRIVAL_SHARE = 0.1
FOLLOW_UP_SHARE = 0.4       # of the arriving tickets: further reports of incidents already there
LEADER_CHANNELS = {"shuji": 55, "juzhang": 45}
LEADER_SHARE = 0.06
LEADER_CROSS_RATE = 0.06

# money at stake (yuan), by problem kind
_AMOUNTS = {"拖欠工资": (6000, 60000), "工伤赔偿": (20000, 150000), "物业费纠纷": (2000, 12000),
            "相邻漏水纠纷": (3000, 30000), "房屋租赁纠纷": (2000, 20000), "交通事故赔偿": (5000, 90000),
            "离婚财产纠纷": (50000, 800000), "讨薪法律援助": (5000, 50000),
            "人身损害赔偿援助": (8000, 120000), "合同法律咨询": (5000, 200000), "预付卡退费": (1000, 20000),
            "临时救助申请": (10000, 80000), "食品安全问题": (100, 2000)}


@dataclass(slots=True)
class Report:
    channel: str
    resident: Resident
    at: datetime
    arrives_after: float = 0.0


@dataclass(slots=True)
class Plan:
    """One incident while it is being generated."""

    incident: Incident
    kind: Kind
    place: Place
    facts: dict[str, int]
    at: datetime
    reports: list[Report] = field(default_factory=list)


class Generator:
    def __init__(self, seed: int, now: datetime, days: float = DAYS) -> None:
        self.seed = seed
        self.now = now
        self.days = days
        self.rng = random.Random(f"{seed}:world")
        self.places = build_gazetteer(random.Random(f"{seed}:places"))
        self.people = PersonFactory(random.Random(f"{seed}:people"), now.date())
        self.residents: list[Resident] = [CITIZEN]
        self.plans: list[Plan] = []

    # incidents

    def new_plan(self, kind: Kind, place: Place, at: datetime, *, negative_of: str | None = None,
                 reporter: Resident | None = None, channel: str | None = None, head_count: int = 0) -> Plan:
        """A new incident of ``kind`` at ``place``, first reported at ``at``."""
        rng = self.rng
        group = head_count > 1 or rng.random() < kind.group_rate
        head_count = head_count or (rng.randint(*kind.group_size) if group else 1)
        first = reporter or self.pick_resident()
        incident = Incident(
            incident_id=f"INC-{len(self.plans) + 1:05d}", street=place.street, community=place.community,
            place_name=place.name, address=place.address, lat=place.lat, lng=place.lng, top_class=kind.top,
            category_path=kind.path, problem=kind.problem, group=group, head_count=head_count,
            respondent=self.respondent(kind, place, first), split=place.split, negative_of=negative_of)
        plan = Plan(incident, kind, place, self.facts(kind), at)
        plan.reports.append(Report(channel or self.channel_for(kind), first, at))
        self.plans.append(plan)
        return plan

    def facts(self, kind: Kind) -> dict[str, int]:
        rng = self.rng
        low, high = _AMOUNTS.get(kind.problem, (2000, 30000))
        return {"months": rng.randint(2, 8), "amount": rng.randrange(low, high, 100),
                "days": rng.randint(3, 70), "hour": rng.choice((22, 23, 24)), "bld": rng.randint(1, 28),
                "floor": rng.randint(2, 32),
                "unit": rng.randint(1, 8), "years": rng.randint(2, 20), "family": rng.randint(2, 6),
                "age": rng.randint(60, 86)}

    def respondent(self, kind: Kind, place: Place, reporter: Resident) -> Resident | None:
        people = self.people
        if kind.party == "employer":
            if place.kind == "company":
                return people.organisation(place.name)
            brand = "".join(self.rng.sample("建安宏达恒信华腾振业中泰鸿基", 2))
            return people.organisation(f"深圳市{brand}建筑劳务有限公司")
        if kind.party == "property":
            return people.organisation(f"深圳市{place.name[:2]}物业管理有限公司")
        if kind.party == "spouse":
            return people.spouse_of(reporter)
        if kind.party is not None:
            return people.resident()
        return None

    def random_at(self) -> datetime:
        """When an incident began: the demo's :data:`DAYS` busier the more recent (a dashboard's last
        days are full), and a world over more days spreads its older reports evenly.

        The latest :data:`DAYS` of a larger world hold their share of its reports, shaped as the demo's,
        so the newest days are as dense at every size: the demo's shape stretched over years would put
        ever more of a bigger world into its last weeks (at a million reports over 6,000 days, 17,000
        in the last six), and the bench's larger stores would measure denser places, not more cases.
        """
        draw = self.rng.random()
        recent = DAYS / self.days if self.days > DAYS else 1.0
        if draw < recent:
            age_days = min(self.days, DAYS) * (draw / recent) ** 1.7
        else:
            age_days = DAYS + (self.days - DAYS) * (draw - recent) / (1 - recent)
        age = timedelta(days=age_days, seconds=self.rng.randint(0, 3600))
        return self.now - max(age, timedelta(minutes=20))

    def random_kind(self) -> Kind:
        return self.rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]

    def place_for(self, kind: Kind) -> Place:
        return self.rng.choice([p for p in self.places if p.kind in kind.places])

    # reporters and channels

    def pick_resident(self) -> Resident:
        rng = self.rng
        if len(self.residents) > 20 and rng.random() < REUSE_RESIDENT_RATE:
            # frequent reporters: the earliest residents are picked more often
            # (the demo citizen, first in the list, only reports his own matters)
            return self.residents[1 + int((len(self.residents) - 1) * rng.random() ** 2.5)]
        resident = self.people.resident()
        self.residents.append(resident)
        return resident

    def channel_for(self, kind: Kind, *, besides: set[str] | None = None) -> str:
        options = {c: w for c, w in kind.channels.items() if c not in (besides or set())}
        if not options:
            return ""
        return self.rng.choices(list(options), weights=list(options.values()))[0]

    def later(self, at: datetime) -> datetime:
        """A further report: within hours to a few days, never in the future."""
        delta = timedelta(hours=self.rng.uniform(0.5, 8) * self.rng.choice((1, 1, 2, 6, 12)))
        limit = self.now - timedelta(minutes=5)
        if at + delta <= limit:
            return at + delta
        return at + (limit - at) * self.rng.uniform(0.3, 0.95) if limit > at else at

    def add_reports(self, plan: Plan, cross_rate: float) -> None:
        rng = self.rng
        used = {r.channel for r in plan.reports}
        if rng.random() < cross_rate:
            self.add_channel(plan, used)
            if rng.random() < THIRD_CHANNEL_RATE:
                self.add_channel(plan, used)
        same_rate = SAME_CHANNEL_RATE * (3 if plan.incident.group else 1)
        if rng.random() < same_rate:
            channel = rng.choice(sorted(used))
            plan.reports.append(Report(channel, self.pick_resident(), self.later(plan.reports[-1].at)))

    def add_channel(self, plan: Plan, used: set[str]) -> None:
        channel = self.channel_for(plan.kind, besides=used)
        if not channel:
            return
        used.add(channel)
        same = self.rng.random() < SAME_RESIDENT_RATE
        resident = plan.reports[0].resident if same else self.pick_resident()
        plan.reports.append(Report(channel, resident, self.later(plan.reports[-1].at)))


def generate(seed: int, now: datetime, incidents: int, days: float = DAYS) -> World:
    """The world for ``seed`` at ``now`` (aware), with ``incidents`` incidents in all over ~``days``."""
    gen = Generator(seed, now.astimezone(UTC).replace(microsecond=0), days)
    citizen = _citizen_incidents(gen)
    arrivals = max(1, round(incidents * ARRIVAL_SHARE)) if incidents >= 10 else 0
    follow_ups = round(arrivals * FOLLOW_UP_SHARE)
    live = arrivals - follow_ups
    negatives = round(incidents * HARD_NEGATIVE_SHARE)
    ordinary = max(1, incidents - citizen - negatives - live)
    for _ in range(ordinary):
        kind = gen.random_kind()
        gen.add_reports(gen.new_plan(kind, gen.place_for(kind), gen.random_at()), CROSS_CHANNEL_RATE)
    originals = gen.plans[citizen:]
    made = 0
    for _ in range(negatives * 5):  # a few originals have no look-alike to offer: try others
        made += _hard_negative(gen, gen.rng.choice(originals))
        if made == negatives:
            break
    _arrivals(gen, live, follow_ups, originals)
    maker = TicketMaker(random.Random(f"{seed}:tickets"), gen.now)
    tickets = maker.make([
        Spec(p.incident, p.kind, p.place, p.facts, r.channel, r.resident, r.at, r.arrives_after)
        for p in gen.plans for r in p.reports])
    tickets = sorted(tickets + _leader_tickets(gen, incidents),
                     key=lambda t: (t.received_at, t.channel, t.source_id))
    return World(seed=seed, now=gen.now, residents=gen.residents, incidents=[p.incident for p in gen.plans],
                 tickets=tickets)


def _citizen_incidents(gen: Generator) -> int:
    """陈晓明's three matters (see sandbox.world); returns how many incidents they are."""
    home = next(p for p in gen.places if p.name == "东能华府")
    work = next(p for p in gen.places if p.kind == "company" and p.street == home.street)

    def days(n: int) -> datetime:
        return gen.now - timedelta(days=n, hours=gen.rng.randint(0, 6))

    wages = gen.new_plan(kind_of("拖欠工资"), work, days(20), reporter=CITIZEN, channel="hotline12345",
                         head_count=30)
    wages.reports += [Report("hotline12345", gen.pick_resident(), days(19)),
                      Report("petition", CITIZEN, days(12)), Report("legalaid", CITIZEN, days(9))]
    gen.new_plan(kind_of("房屋漏水"), home, days(5), reporter=CITIZEN, channel="hotline12345")
    gen.new_plan(kind_of("消防通道堵塞"), home, days(2), reporter=CITIZEN, channel="mayor")
    return 3


def _hard_negative(gen: Generator, original: Plan) -> bool:
    """An incident that looks like ``original`` but is not it, within a day and a half of it."""
    rng = gen.rng
    at = min(original.at + timedelta(hours=rng.uniform(-36, 36)), gen.now - timedelta(minutes=30))
    of = original.incident.incident_id
    same_kind = [p for p in gen.places if p.community == original.place.community and p is not original.place
                 and p.kind in original.kind.places]
    other_kinds = [k for k in KINDS if original.place.kind in k.places and k is not original.kind]
    if same_kind and (rng.random() < 0.5 or not other_kinds):
        same_split = [p for p in same_kind if p.split == original.place.split]
        place = rng.choice(same_split or same_kind)
        plan = gen.new_plan(original.kind, place, at, negative_of=of)
    elif other_kinds:
        plan = gen.new_plan(rng.choice(other_kinds), original.place, at, negative_of=of)
    else:
        return False
    gen.add_reports(plan, CROSS_CHANNEL_RATE / 2)
    return True


def _arrivals(gen: Generator, live: int, follow_ups: int, originals: list[Plan]) -> None:
    """Tickets that arrive while the sandbox runs: ``live`` new incidents and ``follow_ups`` further
    reports of recent ones; one every 20 s at first, all within 900 s."""
    rng = gen.rng
    total = live + follow_ups
    offsets = [20.0 * (i + 1) for i in range(min(total, 20))]
    rest = total - len(offsets)
    offsets += [float(400 + 500 * (i + 1) // rest) for i in range(rest)]
    rng.shuffle(offsets)
    for _ in range(live):
        kind = gen.random_kind()
        after = offsets.pop()
        plan = gen.new_plan(kind, gen.place_for(kind), gen.now + timedelta(seconds=after))
        plan.reports[0].arrives_after = after
    recent = sorted(originals, key=lambda p: p.reports[-1].at, reverse=True)[: max(follow_ups * 3, 1)]
    for plan in rng.sample(recent, min(follow_ups, len(recent))):
        after = offsets.pop()
        used = {r.channel for r in plan.reports}
        channel = gen.channel_for(plan.kind, besides=used) or rng.choice(sorted(used))
        plan.reports.append(Report(channel, gen.pick_resident(), gen.now + timedelta(seconds=after), after))


def _leader_tickets(gen: Generator, incidents: int) -> list[Ticket]:
    """书记在线 and 局长信箱 tickets: new incidents raised only there, and further reports of city and
    housing incidents already in the world. Drawn from streams of their own (see the module doc)."""
    gen.rng = random.Random(f"{gen.seed}:leaders")
    channels, weights = list(LEADER_CHANNELS), list(LEADER_CHANNELS.values())
    specs: list[Spec] = []
    for plan in [p for p in gen.plans if "mayor" in p.kind.channels]:
        if plan.reports[-1].arrives_after or gen.rng.random() >= LEADER_CROSS_RATE:
            continue
        same = gen.rng.random() < SAME_RESIDENT_RATE
        report = Report(gen.rng.choices(channels, weights)[0],
                        plan.reports[0].resident if same else gen.pick_resident(),
                        gen.later(plan.reports[-1].at))
        specs.append(_spec(plan, report))
    kinds = [k for k in KINDS if "mayor" in k.channels]
    for _ in range(max(1, round(incidents * LEADER_SHARE))):
        kind = gen.rng.choices(kinds, weights=[k.weight for k in kinds])[0]
        plan = gen.new_plan(kind, gen.place_for(kind), gen.random_at(),
                            channel=gen.rng.choices(channels, weights)[0])
        specs.append(_spec(plan, plan.reports[0]))
    return TicketMaker(random.Random(f"{gen.seed}:leader-tickets"), gen.now).make(specs)


def _spec(plan: Plan, report: Report) -> Spec:
    return Spec(plan.incident, plan.kind, plan.place, plan.facts, report.channel, report.resident, report.at,
                report.arrives_after)

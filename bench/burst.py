"""民声云 in a city's worst hour: many reports at one place at once (``make bench``'s ``dedup_bursts``).

The scale figures (bench/dedup.py) grow the store over years at a steady density. Bursts are
different: a storm stops the lifts of a whole estate, and every building's residents call within the
hour. Three figures, each in a fresh redis-server, one writer taking pages of 50 as intake does:

* ``estate`` — the lifts of :data:`BUILDINGS` buildings of one estate fail, and each building reports
  :data:`PER_BUILDING` times within the hour, through three channels and in four wordings. Each building
  is its own incident (reports naming different buildings never merge), so the estate's blocking key
  holds more open clusters than retrieval reads under it. B-cubed precision and recall of the clusters
  against the buildings, and how many clusters were made: one per building is right.
* ``estate_outage`` — the same estate's water fails instead: the same number of reports from the same
  buildings, each naming its own, is one incident (the event dictionary marks outages ``area_wide``).
  The clusters made (one is right), and B-cubed precision and recall against that one incident.
* ``mass_incident`` — one building's failure reported :data:`MASS_REPORTS` times: one cluster takes them
  all. This process's and redis-server's CPU per report over the first and the last
  :data:`MASS_WINDOW` reports, and the sizes of the cluster's record and of the last event: what a join
  costs as a cluster grows (the record does not list the cases, and the event of a join names the
  joining case only, so neither grows with the cluster).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import uvloop

from bench.dedup import fill, plain_redis, redis_cpu_seconds, scores
from casework import keys
from casework.clusters import ClusterStore
from casework.reference import Reference
from casework.store import CaseStore
from connectors import CaseRecord, Party, Place, UnifiedStatus
from gateway.embedded import redis_client

BUILDINGS = 30
PER_BUILDING = 20
MASS_REPORTS = 20_000
MASS_SPACING = 6
"""The mass incident's reports are this many estate reports apart (18 s: 20,000 over four days)."""
MASS_WINDOW = 500
ESTATE = "阳光花园"
START = datetime(2026, 7, 1, 20, tzinfo=UTC)
CHANNELS = ("hotline12345", "mayor", "open311")


class Failure(NamedTuple):
    """What fails in the estate, as its reports tell it."""

    title: str                   # after the estate's name
    hint: str                    # the channel's category word
    wordings: tuple[str, ...]    # the content after the estate's name; ``{b}`` is the building


LIFTS = Failure("电梯故障", "电梯故障", ("{b}栋的电梯又坏了，停在半空不动，老人上下楼很困难",
                                    "{b}栋电梯故障好几天了，物业一直不来修",
                                    "我们{b}栋电梯门关不上，按钮也没反应，请尽快维修",
                                    "{b}栋电梯坏了，每天爬楼梯，希望尽快修好电梯"))
"""An incident per building."""
WATER = Failure("停水", "停水", ("{b}栋从早上开始停水，到现在还没有来水，也没有任何通知",
                              "我们{b}栋家里没水了，水龙头拧开什么也没有，老人孩子没法做饭",
                              "{b}栋停水大半天了，听说是水管爆了，什么时候恢复供水",
                              "{b}栋没水，楼上楼下都一样，请尽快恢复供水"))
"""One incident for the estate, however many buildings report it."""


def run() -> dict[str, Any]:
    """The three figures (see the module docstring)."""
    reference = Reference.load()
    return {"estate": _estate(reference, LIFTS, per_building=True),
            "estate_outage": _estate(reference, WATER, per_building=False),
            "mass_incident": _mass_incident(reference),
            "note": "one writer, pages of 50, a fresh redis-server each; the estate's reports 3 s apart "
                    "(600 within the half hour), the mass incident's 18 s apart (20,000 over four days)"}


def _report(n: int, building: int, failure: Failure = LIFTS) -> CaseRecord:
    at = START + timedelta(seconds=3 * n)
    wording = failure.wordings[n // BUILDINGS % len(failure.wordings)]
    return CaseRecord(channel=CHANNELS[n % len(CHANNELS)], source_id=f"burst-{n}",
                      title=ESTATE + failure.title, content=ESTATE + wording.format(b=building),
                      category_hint=failure.hint, status=UnifiedStatus.SUBMITTED,
                      place=Place(street="光明街道", community="光明社区"),
                      parties=(Party(role="诉求人", name="业主", phone=f"139{n:08d}"),),
                      source_status="受理", received_at=at, updated_at=at)


def _estate(reference: Reference, failure: Failure, *, per_building: bool) -> dict[str, Any]:
    records = [_report(n, n % BUILDINGS + 1, failure) for n in range(BUILDINGS * PER_BUILDING)]
    gold = {f"{r.channel}:{r.source_id}": str(n % BUILDINGS if per_building else 0)
            for n, r in enumerate(records)}
    with plain_redis() as url:
        predicted = uvloop.run(_fill_and_read(url, records, reference))
    found = scores(predicted, gold)
    return {"buildings": BUILDINGS, "reports": len(records), "clusters": len(set(predicted.values())),
            "bcubed_precision": found["bcubed_precision"], "bcubed_recall": found["bcubed_recall"]}


async def _fill_and_read(url: str, records: list[CaseRecord], reference: Reference) -> dict[str, str]:
    client = redis_client(url)
    try:
        await fill(ClusterStore(client, CaseStore(client, reference), reference), records, writers=1)
        links = await client.hgetall(keys.CLUSTER_OF)
    finally:
        await client.aclose()
    return {key.decode(): cluster.decode() for key, cluster in links.items()}


def _mass_incident(reference: Reference) -> dict[str, Any]:
    records = [_report(n * MASS_SPACING, 1) for n in range(MASS_REPORTS)]  # one building: one incident
    with plain_redis() as url:
        return uvloop.run(_grow(url, records, reference))


async def _grow(url: str, records: list[CaseRecord], reference: Reference) -> dict[str, Any]:
    client = redis_client(url)
    clusters = ClusterStore(client, CaseStore(client, reference), reference)
    try:
        first = await _cost(url, clusters, records[:MASS_WINDOW])
        await fill(clusters, records[MASS_WINDOW:-MASS_WINDOW], writers=1)
        last = await _cost(url, clusters, records[-MASS_WINDOW:])
        sizes = await client.zrevrange(keys.cluster_order("count"), 0, 0, withscores=True)
        record = await client.hmget(keys.cluster(sizes[0][0].decode()), "doc", "ix") if sizes else []
        [(_, event)] = await client.xrevrange(keys.EVENTS, count=1)
    finally:
        await client.aclose()
    return {"reports": len(records), "largest_cluster": int(sizes[0][1]) if sizes else 0,
            f"first_{MASS_WINDOW}": first, f"last_{MASS_WINDOW}": last,
            "cluster_record_bytes": sum(len(part or b"") for part in record),
            "last_event_bytes": sum(len(name) + len(value) for name, value in event.items())}


async def _cost(url: str, clusters: ClusterStore, records: list[CaseRecord]) -> dict[str, float]:
    python, redis_cpu = time.process_time(), redis_cpu_seconds(url)
    await fill(clusters, records, writers=1)
    python, redis_cpu = time.process_time() - python, redis_cpu_seconds(url) - redis_cpu
    return {"python_cpu_ms_per_case": round(python * 1000 / len(records), 3),
            "redis_cpu_ms_per_case": round(redis_cpu * 1000 / len(records), 3)}

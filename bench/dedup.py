"""民声云 figures: clustering quality against the sandbox truth, and the matcher's cost as the store grows.

* ``quality(stack)`` — after the running stack synced the sandbox (seed 7), pairwise and B-cubed
  precision and recall of the clusters against ``/__sandbox/truth``, separately for the ``tune`` split
  (the thresholds were chosen on it) and the ``holdout`` split (places and phrasings kept out of tuning);
  then the same for more worlds (``QUALITY_SEEDS``, each its own stack) and pooled over all of them. One
  world holds ~150 held-out cases, so one wrong merge moves its holdout precision by ~0.007: the pooled
  figure is the one to judge by. Every world is generated at the start of the current week
  (:func:`sandbox.world.week_start`, ``world_at`` in the figures): a world depends on the time of week it
  is made at, so worlds made at the current time made the figure move from one day to the next.
  ``MINSHENG_BENCH_QUALITY_SEEDS`` (e.g. ``7`` or ``7,8,9``) sets the worlds.
  A quality world is sparse: ~9 reports a day over the district's places, where ``scale``'s worlds
  hold ~166. Measured against its own incidents, a scale world's one-writer 20k fill scores B-cubed
  precision ~0.83 and recall ~0.94: at that density the generator draws the same problem at the same
  named place as separate incidents a few days apart (~70 % of the wrongly merged pairs), which
  DESIGN.md's definition of an incident makes one, and it reuses its phrasings across places (~17 %
  more: the same problem at another place in the same community). That is why no figure is taken
  from the scale worlds' truth; it is also where dense real data would test the matcher hardest.
* ``scale(sizes)`` — a larger sandbox world (same generator, another seed) turned into case records and
  ingested + clustered into a fresh redis-server at each size: throughput of the fill (2 concurrent
  writers, each taking pages of 50 records as intake takes a channel's page: the page stored in one
  write, then its new cases clustered together, in order), then, with the store at that size, per-case dedup
  latency p50/p99 and the candidates the matcher examined per new case (flat when retrieval is
  indexed), Redis memory per case, and the fill's CPU per case (this process's and redis-server's:
  on the 2-core machine their sum bounds what two processes could reach; ``gc_ms_per_case`` is the
  part of this process's that went to garbage collections). The world grows over time,
  not in density: its reports are spread over ``size / CASES_PER_DAY`` days (at least the demo's
  60), as a city's store reaches a million cases through years of appeals — packing 1M reports into
  the same 60 days and places would put ~100 reports of one kind at one place in a day, and the
  figures would measure ever larger clusters (`mean_cases_per_cluster` shows the density each size
  ran at). Every size's latest 60 days are the demo's (busier the more recent), and the days before
  them are evenly spread (:meth:`sandbox.worldgen.Generator.random_at`); so the latency probes, the
  newest reports, meet the same density at every size.
  ``MINSHENG_BENCH_DEDUP_SIZES`` (e.g. ``10000,100000,1000000``) sets the sizes (default 10k only).
  The fill runs as the gateway's intake runs: on uvloop (gateway/cli.py), with the gateway's Redis
  client (gateway/embedded.py) and garbage-collector threshold (gateway/runtime.py). Up to 100k, the
  fill is then run again into an empty store by two processes (``replicas``), each taking the channels
  :func:`casework.synclease.plan` deals to it, weighed by their cases: what two gateway replicas on
  the 2-core machine do.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import multiprocessing.queues
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import uvloop

from bench.harness import Stack, free_port, stack
from casework import keys
from casework.clusters import ClusterStore
from casework.reference import Reference
from casework.store import CaseStore
from casework.synclease import channel_weight, plan
from connectors import CaseRecord, Party, Place, UnifiedStatus
from gateway.embedded import redis_client
from gateway.runtime import tune_gc
from gateway.settings import Settings

REPLICAS = 2
"""Processes of the split fill: one per core of the 2-core machine the targets are set for."""
SPLIT_MAX_SIZE = 100_000
"""The split fill runs up to this size: at 1M the children's copies of the records (reference counts
touch every page) would not fit beside redis-server's ~15 GB on a 24 GB machine."""
QUALITY_SEEDS = tuple(range(1, 31))
"""The worlds the quality figure pools (the demo's, seed 7, among them): ~4 s each."""
DEFAULT_SIZES = (10_000,)
"""100k and 1M take long on a shared 2-core machine: ask for them with MINSHENG_BENCH_DEDUP_SIZES."""
PROBES = 1000
CASES_PER_DAY = 10_000 / 60
"""The smallest size's density (10k cases in the demo's 60 days); larger stores span more days."""
WRITERS = 2
"""Concurrent page writers per process. A page is clustered in a few round trips, so two keep a process
busy; more only make pages that touch the same clusters conflict (``WATCH``) and be clustered again."""
PAGE = 50
_STAGES = {"new": UnifiedStatus.SUBMITTED, "accepted": UnifiedStatus.ACCEPTED,
           "processing": UnifiedStatus.IN_PROGRESS, "done": UnifiedStatus.RESOLVED,
           "closed": UnifiedStatus.CLOSED, "rejected": UnifiedStatus.REJECTED}


# -- quality ------------------------------------------------------------------------------------

def scores(predicted: Mapping[str, str], gold: Mapping[str, str]) -> dict[str, float | int]:
    """Pairwise and B-cubed precision/recall of ``predicted`` (item → cluster) against ``gold``."""
    items = list(gold)
    by_pred: dict[str, set[str]] = defaultdict(set)
    by_gold: dict[str, set[str]] = defaultdict(set)
    for item in items:
        by_pred[predicted[item]].add(item)
        by_gold[gold[item]].add(item)
    both = [len(by_pred[predicted[i]] & by_gold[gold[i]]) for i in items]
    b3p = sum(n / len(by_pred[predicted[i]]) for n, i in zip(both, items, strict=True)) / len(items)
    b3r = sum(n / len(by_gold[gold[i]]) for n, i in zip(both, items, strict=True)) / len(items)
    tp = fp = fn = 0
    for a, b in itertools.combinations(items, 2):
        same_pred, same_gold = predicted[a] == predicted[b], gold[a] == gold[b]
        tp += same_pred and same_gold
        fp += same_pred and not same_gold
        fn += same_gold and not same_pred
    return {"cases": len(items), "bcubed_precision": round(b3p, 4), "bcubed_recall": round(b3r, 4),
            "pairwise_precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "pairwise_recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
            "true_pairs": tp + fn, "wrong_merges": fp, "missed_pairs": fn}


async def _clusters_of(redis_url: str) -> dict[str, str]:
    client = aioredis.from_url(redis_url)
    try:
        case_keys = [k.decode() for k in await client.zrange(keys.ALL_CASES, 0, -1)]
        async with client.pipeline(transaction=False) as pipe:
            for key in case_keys:
                pipe.hget(keys.case(key), "cluster")
            found = await pipe.execute()
    finally:
        await client.aclose()
    return {key: (c.decode() if c else f"unclustered:{key}") for key, c in zip(case_keys, found, strict=True)}


def quality(running: Stack) -> dict[str, Any]:
    """Clusters against the sandbox's ground truth, per evaluation split: for the running stack's world,
    for each further world of ``QUALITY_SEEDS``, and pooled over all of them."""
    raw = os.environ.get("MINSHENG_BENCH_QUALITY_SEEDS")
    seeds = tuple(int(s) for s in raw.split(",")) if raw else QUALITY_SEEDS
    worlds = {running.seed: _world_quality(running)}
    world_at = datetime.fromisoformat(running.world_at)
    for seed in seeds:
        if seed not in worlds:
            with stack(seed, world_at) as other:
                worlds[seed] = _world_quality(other)
    pooled: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for seed, splits in worlds.items():
        for split, (predicted, gold) in splits.items():
            into = pooled.setdefault(split, ({}, {}))
            # the worlds' case, cluster and incident ids overlap: each is told by its seed
            into[0].update({f"{seed}/{key}": f"{seed}/{cluster}" for key, cluster in predicted.items()})
            into[1].update({f"{seed}/{key}": f"{seed}/{incident}" for key, incident in gold.items()})
    figures: dict[str, Any] = {"seeds": sorted(worlds), "world_at": running.world_at}
    figures.update({split: scores(*pair) for split, pair in pooled.items()})
    figures["per_seed"] = {str(seed): {split: scores(*pair) for split, pair in splits.items()}
                           for seed, splits in sorted(worlds.items())}
    figures["targets"] = {"bcubed_precision": 0.99, "bcubed_recall": 0.92, "on": "holdout, pooled"}
    figures["note"] = "thresholds (casework/dedup.py Thresholds) were chosen on the tune split only"
    return figures


def _world_quality(running: Stack) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per split: the synced cases' clusters (case → cluster) and their incidents (case → incident)."""
    truth = httpx.get(f"{running.sandbox_url}/__sandbox/truth", timeout=30).json()
    predicted = asyncio.run(_clusters_of(running.redis_url))
    gold: dict[str, dict[str, str]] = {"tune": {}, "holdout": {}}
    for incident, reports in truth["incidents"].items():
        for report in reports:
            key = f"{report['channel']}:{report['source_id']}"
            if key in predicted:
                gold[truth["splits"][incident]][key] = incident
    return {split: ({key: predicted[key] for key in items}, items) for split, items in gold.items() if items}


# -- scale --------------------------------------------------------------------------------------

@contextmanager
def plain_redis() -> Iterator[str]:
    """A redis-server without persistence: the figures measure the matcher, not the disk."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
                                    "--save", "", "--appendonly", "no"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=15)


def _records(count: int, seed: int = 11) -> list[CaseRecord]:
    """About ``count`` case records from a sandbox world of the right size (ids made unique per world)."""
    from sandbox.world import generate_world

    world = generate_world(seed, datetime(2026, 11, 1, tzinfo=UTC), incidents=max(10, int(count / 1.39)),
                           days=_days(count))
    records = []
    for n, t in enumerate(world.tickets[:count]):
        records.append(CaseRecord(
            channel=t.channel, source_id=f"{t.source_id}#{n}", title=t.title, content=t.content,
            category_hint="/".join(t.category_path), status=_STAGES.get(t.stage, UnifiedStatus.SUBMITTED),
            place=Place(street=t.street, community=t.community, address=t.address, lat=t.lat, lng=t.lng),
            parties=(Party(role="诉求人", name=t.resident.name, phone=t.resident.phone,
                           id_number=t.resident.id_number),),
            source_status=t.stage, received_at=t.received_at, updated_at=t.updated_at))
    return records


def _days(count: int) -> float:
    return max(60.0, count / CASES_PER_DAY)


async def fill(clusters: ClusterStore, records: list[CaseRecord], writers: int = WRITERS) -> float:
    """Ingest and cluster ``records`` with a few concurrent writers; returns cases per second."""
    queue = iter([records[i:i + PAGE] for i in range(0, len(records), PAGE)])
    started = time.perf_counter()

    async def writer() -> None:
        for page in queue:
            ingested = await clusters.cases.ingest_cases(page)
            await clusters.assign_many([(f"{record.channel}:{record.source_id}", case)
                                        for record, (_, case) in zip(page, ingested, strict=True)])

    await asyncio.gather(*(writer() for _ in range(writers)))
    return len(records) / (time.perf_counter() - started)


async def _one_size(redis_url: str, size: int, records: list[CaseRecord],
                    reference: Reference) -> dict[str, Any]:
    client = redis_client(redis_url)
    baseline = int((await client.info("memory"))["used_memory"])
    store = CaseStore(client, reference)
    clusters = ClusterStore(client, store, reference)
    redis_cpu, python_cpu = redis_cpu_seconds(redis_url), time.process_time()
    with _collector_time() as collecting:
        throughput = await fill(clusters, records[:size])
    python_cpu, redis_cpu = time.process_time() - python_cpu, redis_cpu_seconds(redis_url) - redis_cpu
    memory = int((await client.info("memory"))["used_memory"]) - baseline
    clusters_made = int(await client.zcard(keys.cluster_order("last")))
    clusters.record_examined = True
    latencies = []
    for record in records[size:]:
        [(_, case)] = await store.ingest_cases([record])
        started = time.perf_counter()
        await clusters.assign(f"{record.channel}:{record.source_id}", case)  # as intake calls it
        latencies.append((time.perf_counter() - started) * 1000)
    await client.aclose()
    examined = clusters.examined
    return {"cases": size, "ingest_and_cluster_per_second": round(throughput),
            "python_cpu_ms_per_case": round(python_cpu * 1000 / size, 3),
            "redis_cpu_ms_per_case": round(redis_cpu * 1000 / size, 3),
            "gc_ms_per_case": round(sum(collecting) * 1000 / size, 3),
            "dedup_ms_p50": round(statistics.median(latencies), 2),
            "dedup_ms_p99": round(sorted(latencies)[int(len(latencies) * 0.99) - 1], 2),
            "candidates_examined_mean": round(statistics.mean(examined), 1),
            "candidates_examined_max": max(examined),
            "redis_bytes_per_case": round(memory / size),
            "days_spanned": round(_days(size + PROBES)),
            "mean_cases_per_cluster": round(size / max(clusters_made, 1), 2)}


@contextmanager
def _collector_time() -> Iterator[list[float]]:
    """The seconds each garbage collection took while inside (``gc.callbacks``): a share of the fill's
    Python time that grows with what the process keeps alive, not with the work per case."""
    spent: list[float] = []
    started = [0.0]

    def timed(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent.append(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    try:
        yield spent
    finally:
        gc.callbacks.remove(timed)


def scale(sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The matcher's cost at each store size (see the module docstring)."""
    raw = os.environ.get("MINSHENG_BENCH_DEDUP_SIZES")
    chosen = sizes or (tuple(int(s) for s in raw.split(",")) if raw else DEFAULT_SIZES)
    reference = Reference.load()
    runs = []
    collector = tune_gc(Settings().gc_young)  # as `minsheng up` and `minsheng backfill` set it
    young = gc.get_threshold()[0]
    try:
        with plain_redis() as url:
            for size in chosen:
                runs.append(_at_size(url, size, reference))
    finally:
        gc.set_threshold(*collector)
    return {"sizes": runs, "probes_per_size": PROBES, "writers": WRITERS, "page": PAGE, "gc_young": young,
            "note": "one Python process on the machine's cores, redis-server without persistence; latency is "
                    "one new case's clustering (retrieve + score + MULTI) with the store at that size; "
                    "`*_cpu_ms_per_case`: the fill's CPU (this process; redis-server by INFO cpu); "
                    "`gc_ms_per_case`: the part of this process's spent in garbage collections; "
                    "`replicas`: the same fill into an empty store by processes that split the channels as "
                    "gateway replicas do; `gc_young`: the garbage collector's young threshold, as the "
                    "gateway sets it (MINSHENG_GC_YOUNG)"}


def _at_size(url: str, size: int, reference: Reference) -> dict[str, Any]:
    records = _records(size + PROBES)
    # The bench holds every record of the fill in memory (1M at the largest size); a gateway holds a
    # page. Frozen, they are not traversed by each full garbage collection, which would otherwise
    # charge the matcher for the bench's own input as the size grows.
    gc.collect()
    gc.freeze()
    try:
        _flush(url)
        figures = uvloop.run(_one_size(url, size, records, reference))
        if size <= SPLIT_MAX_SIZE:
            figures["replicas"] = _split_fill(url, records[:size], reference, REPLICAS)
    finally:
        gc.unfreeze()
    return figures


# -- the fill split over processes, as replicas split the channels --------------------------------

def _split_fill(url: str, records: list[CaseRecord], reference: Reference, count: int) -> dict[str, Any]:
    """Fill an empty store again with ``count`` processes, each ingesting and clustering the records
    of the channels :func:`casework.synclease.plan` deals to it (``WRITERS`` writers each),
    started together; returns the cases per second of the whole."""
    names = [f"replica-{n}" for n in range(count)]
    # weighed by the cases each channel brings, as replicas weigh them once the store holds its history
    weights = {channel: channel_weight(n) for channel, n in Counter(r.channel for r in records).items()}
    owners = plan(weights, names, weights)
    parts = [[record for record in records if owners[record.channel] == name] for name in names]
    _flush(url)
    context = multiprocessing.get_context("fork")  # the children share the parent's records
    finished: multiprocessing.queues.Queue[tuple[float, float]] = context.Queue()
    redis_cpu = redis_cpu_seconds(url)
    started = time.time() + 2.0  # every child loaded and connected before the clock starts
    children = [context.Process(target=_fill_part, args=(url, part, reference, started, finished),
                                kwargs={"writers": WRITERS}) for part in parts]
    for child in children:
        child.start()
    for child in children:
        child.join()
    if any(child.exitcode != 0 for child in children):
        raise RuntimeError(f"a fill process failed: exit codes {[child.exitcode for child in children]}")
    ends, python_cpu = zip(*(finished.get(timeout=10) for _ in children), strict=True)
    redis_cpu = redis_cpu_seconds(url) - redis_cpu
    return {"processes": count, "ingest_and_cluster_per_second": round(len(records) / (max(ends) - started)),
            "python_cpu_ms_per_case": round(sum(python_cpu) * 1000 / len(records), 3),
            "redis_cpu_ms_per_case": round(redis_cpu * 1000 / len(records), 3),
            "cases_per_process": [len(part) for part in parts]}


def _fill_part(url: str, records: list[CaseRecord], reference: Reference, started: float,
               finished: multiprocessing.queues.Queue[tuple[float, float]], *, writers: int) -> None:
    finished.put(uvloop.run(_fill_from(url, records, reference, started, writers)))


async def _fill_from(url: str, records: list[CaseRecord], reference: Reference, started: float,
                     writers: int) -> tuple[float, float]:
    """The fill of ``records`` from ``started`` on: when it ended, and this process's CPU seconds."""
    client = redis_client(url)
    try:
        await client.ping()
        await asyncio.sleep(max(0.0, started - time.time()))
        cpu = time.process_time()
        await fill(ClusterStore(client, CaseStore(client, reference), reference), records, writers)
        return time.time(), time.process_time() - cpu
    finally:
        await client.aclose()


def redis_cpu_seconds(url: str) -> float:
    """redis-server's CPU seconds so far (``INFO cpu``; ``commandstats`` counts what runs inside
    ``EVAL`` and ``EXEC`` twice). Read between fills, so a blocking client does no harm."""
    client = redis.Redis.from_url(url)
    try:
        found = client.info("cpu")
        return float(found["used_cpu_user"]) + float(found["used_cpu_sys"])
    finally:
        client.close()


def _flush(url: str) -> None:
    """Empty the store, however long that takes (a 100k store's millions of keys take longer than a
    client's read timeout)."""
    client = redis.Redis.from_url(url, socket_timeout=None)
    try:
        client.flushdb()
    finally:
        client.close()

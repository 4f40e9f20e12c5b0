"""Every Redis key the gateway writes, and nothing else: the store's layout in one place.

The layout is drawn for a later move to Redis Cluster, where a command or transaction may
only touch keys of one hash slot (the part of a key between the first ``{`` and ``}``):

=============================================  ==========================================
key                                            holds
=============================================  ==========================================
``ms:case:{<channel>:<source id>}``            hash: one case (doc, digest, memberships)
``ms:src:{<channel>:<source id>}``             hash: the cached live source record (TTL)
``ms:{ix}:all``                                zset: every case key, scored by received time
``ms:{ix}:channels``                           set: channel keys that have cases
``ms:{ix}:gen``                                counter: bumped by every change (search cache)
``ms:{ix}:ch:<channel>``                       set: case keys of a channel
``ms:{ix}:st:<STATUS>``                        set: case keys with a unified status
``ms:{ix}:rg:<region id>``                     set: cases in a region or anywhere beneath it
``ms:{ix}:ct:<category id>``                   set: cases in a category or anywhere beneath it
``ms:{ix}:t2:<bigram>`` / ``ms:{ix}:t1:<char>``  set: text index (title+content / title only)
``ms:{ix}:who:<hmac hex>``                     set: cases of one phone number or ID number
``ms:{ix}:dp:<department id>``                 set: cases assigned or summoned (吹哨) to a department
``ms:{ix}:pa:<department id>``                 set: petitions complaining about a department
``ms:case:{<channel>:<source id>}:dp``         set: the departments a case is assigned or summoned to
``ms:{ix}:q:<hash>`` (and ``…:<n>``)           zset: a search's result, short-lived
``ms:events``                                  stream: every change, one entry
``ms:events:trimmed``                          string: newest event id retention removed
``ms:cursors``                                 hash: channel → saved sync cursor
``ms:sync:lease:<channel>``                    string (TTL): the replica that syncs the channel
``ms:sync:state``                              hash: channel → its holder's last published sync state
``ms:sync:replicas``                           zset: replicas that sync, by when their heartbeat runs out
``ms:quarantine:{<channel>}`` (``:n``, ``:seen``)  list / counter / hash of rejected records
``ms:quarantine:channels``                     set: channels that ever quarantined a record
``ms:cluster:{<cluster id>}``                  hash: one cluster (民声云 dispatch unit) and its index keys
``ms:cluster:{<cluster id>}:cases``            zset: the cluster's case keys, scored by received time
``ms:{ix}:cl:sigs``                            hash: cluster id → its members' dedup signatures (JSON)
``ms:{ix}:cl:seq``                             counter: the last cluster number handed out
``ms:{ix}:cl:of``                              hash: case key → its cluster id
``ms:{ix}:cl:pending``                         set: cases stored but not yet clustered
``ms:{ix}:cl:lock``                            string (TTL): the replica clustering a page now
``ms:{ix}:cl:by:<order>``                      zset: clusters by last report / reports / risk / deadline
``ms:{ix}:cl:ch|st|rg|ct|dep|who:<value>``     set: clusters by channel, status, region, category …
``ms:{ix}:cl:overdue``                         set: clusters past their deadline (dispatch keeps it)
``ms:{ix}:cl:gen`` / ``ms:{ix}:cl:q:<hash>``   counter / short-lived zset: dispatch-view results
``ms:{ix}:dd:<block>``                         zset: dedup blocking — clusters by last report time
``ms:backfill``                                hash: channel → persisted backfill cursor
``ms:rl:{<who>}:<window>``                     hash: a client's operations / root fields this window
=============================================  ==========================================

A case's own keys share the case's tag, so the case hash and its source-cache entry live in one
slot; every index shares the tag ``{ix}``, so ``ZINTERSTORE``/``SUNIONSTORE`` across them is a
single-slot command. On one Redis (today) ingest changes the case, its indexes and the event
stream in one ``MULTI``; on a Cluster that transaction has to split into the case's slot and the
``{ix}`` slot, with the case hash's recorded memberships making the index half replayable.
"""

from __future__ import annotations

__all__ = [
    "ALL_CASES",
    "BACKFILL_CURSORS",
    "CHANNELS",
    "CLUSTERING_LOCK",
    "CLUSTER_GENERATION",
    "CLUSTER_OF",
    "CLUSTER_OVERDUE",
    "CLUSTER_PENDING",
    "CLUSTER_SEQUENCE",
    "CLUSTER_SIGNATURES",
    "CURSORS",
    "EVENTS",
    "EVENTS_TRIMMED",
    "GENERATION",
    "QUARANTINE_CHANNELS",
    "SOURCE_CACHE_SCAN_PATTERN",
    "SYNC_REPLICAS",
    "SYNC_STATES",
    "case",
    "case_departments",
    "category_index",
    "channel_index",
    "cluster",
    "cluster_cases",
    "cluster_index",
    "cluster_order",
    "cluster_query",
    "dedup_block",
    "department_index",
    "identity_index",
    "petition_against_index",
    "quarantine_count",
    "quarantine_list",
    "quarantine_seen",
    "query_part",
    "query_result",
    "rate_limit",
    "region_index",
    "source_cache",
    "status_index",
    "sync_lease",
    "text_bigram_index",
    "title_char_index",
]

PREFIX = "ms"
INDEX_TAG = "{ix}"
INDEX = f"{PREFIX}:{INDEX_TAG}"

ALL_CASES = f"{INDEX}:all"
CHANNELS = f"{INDEX}:channels"
GENERATION = f"{INDEX}:gen"
EVENTS = f"{PREFIX}:events"
EVENTS_TRIMMED = f"{PREFIX}:events:trimmed"
CURSORS = f"{PREFIX}:cursors"
QUARANTINE_CHANNELS = f"{PREFIX}:quarantine:channels"
SYNC_STATES = f"{PREFIX}:sync:state"
SYNC_REPLICAS = f"{PREFIX}:sync:replicas"

SOURCE_CACHE_SCAN_PATTERN = f"{PREFIX}:src:*"
"""For operators' tools and tests that flush the source cache; the gateway itself never scans."""


def _tag(channel: str, source_id: str) -> str:
    return f"{{{channel}:{source_id}}}"


def case(case_key: str) -> str:
    """The case hash of ``case_key`` (``<channel>:<source id>``, see :func:`casework.model.case_key`)."""
    return f"{PREFIX}:case:{{{case_key}}}"


def sync_lease(channel: str) -> str:
    """Names the replica that syncs ``channel`` (see :mod:`casework.synclease`)."""
    return f"{PREFIX}:sync:lease:{channel}"


def source_cache(channel: str, source_id: str) -> str:
    """The cached live record of one source ticket; same slot as its case."""
    return f"{PREFIX}:src:{_tag(channel, source_id)}"


def channel_index(channel: str) -> str:
    return f"{INDEX}:ch:{channel}"


def status_index(status: str) -> str:
    return f"{INDEX}:st:{status}"


def region_index(region_id: str) -> str:
    return f"{INDEX}:rg:{region_id}"


def category_index(category_id: str) -> str:
    return f"{INDEX}:ct:{category_id}"


def text_bigram_index(bigram: str) -> str:
    return f"{INDEX}:t2:{bigram}"


def title_char_index(char: str) -> str:
    return f"{INDEX}:t1:{char}"


def identity_index(digest: str) -> str:
    """Cases of one person, by keyed hash (never the phone or ID number itself)."""
    return f"{INDEX}:who:{digest}"


def department_index(department_id: str) -> str:
    """Cases assigned or summoned to a department (what a department's viewers may see)."""
    return f"{INDEX}:dp:{department_id}"


def petition_against_index(department_id: str) -> str:
    """Petitions that complain about a department: never shown to it (信访工作条例 art. 30)."""
    return f"{INDEX}:pa:{department_id}"


def case_departments(case_key: str) -> str:
    """The departments one case is assigned or summoned to; same slot as the case."""
    return f"{PREFIX}:case:{{{case_key}}}:dp"


def query_result(query_hash: str) -> str:
    """A search's filtered, time-scored result set (expires after seconds)."""
    return f"{INDEX}:q:{query_hash}"


def query_part(query_hash: str, part: int) -> str:
    """A scratch union of one filter's alternatives while a search result is built."""
    return f"{INDEX}:q:{query_hash}:{part}"


def quarantine_list(channel: str) -> str:
    return f"{PREFIX}:quarantine:{{{channel}}}"


def quarantine_count(channel: str) -> str:
    return f"{PREFIX}:quarantine:{{{channel}}}:n"


def quarantine_seen(channel: str) -> str:
    """Digests of rejected records already quarantined, so a re-fetched page adds nothing."""
    return f"{PREFIX}:quarantine:{{{channel}}}:seen"


# -- clusters (民声云) and their dedup indexes ----------------------------------------------------

CLUSTER_SEQUENCE = f"{INDEX}:cl:seq"
CLUSTER_OF = f"{INDEX}:cl:of"
CLUSTER_SIGNATURES = f"{INDEX}:cl:sigs"
CLUSTER_PENDING = f"{INDEX}:cl:pending"
CLUSTERING_LOCK = f"{INDEX}:cl:lock"
CLUSTER_OVERDUE = f"{INDEX}:cl:overdue"
CLUSTER_GENERATION = f"{INDEX}:cl:gen"
BACKFILL_CURSORS = f"{PREFIX}:backfill"


def cluster(cluster_id: str) -> str:
    """The hash of one cluster: its record (``doc``) and the index keys it is filed under (``ix``)."""
    return f"{PREFIX}:cluster:{{{cluster_id}}}"


def cluster_cases(cluster_id: str) -> str:
    """The keys of a cluster's cases, scored by received time: apart from its record, so that a report
    joining a mass incident's cluster writes one member instead of the record's list of thousands."""
    return f"{PREFIX}:cluster:{{{cluster_id}}}:cases"


def cluster_order(order: str) -> str:
    """Every cluster scored for one sort order (``last``, ``count``, ``risk``, ``deadline``)."""
    return f"{INDEX}:cl:by:{order}"


def cluster_index(kind: str, value: str) -> str:
    """Clusters by one facet: ``ch`` channel, ``st`` status, ``rg`` region (and beneath), ``ct`` category,
    ``dep`` department, ``who`` a member's identity hash."""
    return f"{INDEX}:cl:{kind}:{value}"


def cluster_query(query_hash: str, part: int | None = None) -> str:
    """A dispatch-view result (or a scratch part of building one), short-lived."""
    return f"{INDEX}:cl:q:{query_hash}" + ("" if part is None else f":{part}")


def dedup_block(block: str) -> str:
    """Clusters sharing one blocking key (a community, a named place, a resident), by last report."""
    return f"{INDEX}:dd:{block}"


# -- dispatch, supervision and feedback (casework/dispatch.py, outbox.py, whistles.py, stats.py) -------------
#
# ``ms:dispatch:{<cluster id>}``      hash: the cluster's dispatch record (``doc`` JSON, ``v`` version)
# ``ms:{dx}:open``                    zset: open assignment id → deadline (overdue = score < now)
# ``ms:{dx}:cards``                   hash: open assignment id → the last card announced (card.issued)
# ``ms:{dx}:open:dims``               hash: open assignment id → its statistics dimensions (JSON)
# ``ms:{dx}:cube``                    hash: statistics counters, field ``metric|street|…|channel|day``
# ``ms:{dx}:whistle:seq``             counter: the last 吹哨单 number
# ``ms:whistle:{<no>}``               hash: one whistle order (``doc`` JSON)
# ``ms:{dx}:whistles``                zset: whistle numbers by report deadline
# ``ms:{ob}:items``                   hash: write-back delivery id → JSON (action, attempts, state)
# ``ms:{ob}:due``                     zset: case key → when its head delivery is due (the worker's queue)
# ``ms:{ob}:q:<case key>``            list: a case's undelivered deliveries, in order
# ``ms:{ob}:case:<case key>``         list: every delivery of a case (``Case.writeBacks``)
# ``ms:{ob}:dead``                    list: dead-lettered delivery ids, newest first
# ``ms:{dx}:router``                  the routing worker's consumer group on ``ms:events``

DISPATCH_INDEX = f"{PREFIX}:{{dx}}"
OUTBOX = f"{PREFIX}:{{ob}}"
OPEN_ASSIGNMENTS = f"{DISPATCH_INDEX}:open"
OPEN_ASSIGNMENT_DIMS = f"{DISPATCH_INDEX}:open:dims"
ASSIGNMENT_CARDS = f"{DISPATCH_INDEX}:cards"
STATS_CUBE = f"{DISPATCH_INDEX}:cube"
WHISTLE_SEQUENCE = f"{DISPATCH_INDEX}:whistle:seq"
WHISTLES = f"{DISPATCH_INDEX}:whistles"
OUTBOX_ITEMS = f"{OUTBOX}:items"
OUTBOX_DUE = f"{OUTBOX}:due"
OUTBOX_DEAD = f"{OUTBOX}:dead"
ROUTER_GROUP = "minsheng-router"


def dispatch_record(cluster_id: str) -> str:
    return f"{PREFIX}:dispatch:{{{cluster_id}}}"


def whistle(number: str) -> str:
    return f"{PREFIX}:whistle:{{{number}}}"


def outbox_queue(case_key: str) -> str:
    return f"{OUTBOX}:q:{case_key}"


def case_write_backs(case_key: str) -> str:
    return f"{OUTBOX}:case:{case_key}"


def rate_limit(who: str, window: int) -> str:
    """Hash: one client's operation and root-field counts in one rate-limit window (expires after it)."""
    return f"{PREFIX}:rl:{{{who}}}:{window}"

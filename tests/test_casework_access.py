"""Rights in the store's indexes: scoped searches, department links, petitions against a unit."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from auth.audit import AuditLog
from auth.identity import IdentityHasher
from auth.rights import Scope, case_scope
from auth.viewer import Role, Viewer
from casework.access import departments_of, link_department_in, respondent_departments, unlink_department_in
from casework.model import CaseQuery
from casework.reference import Reference
from casework.store import CaseStore
from connectors import Party, Place
from resolvers.errors import Forbidden
from resolvers.rights import audited
from tests.test_casework_store import ID_NUMBER, PHONE, record

KEY = b"test-key"


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture
def store(redis_client: aioredis.Redis, reference: Reference) -> CaseStore:
    return CaseStore(redis_client, reference, hash_key=KEY)


async def found(store: CaseStore, scope: Scope, first: int = 100, **filters: Any) -> tuple[list[str], int]:
    page = await store.search(CaseQuery(scope=scope, **filters), first=first, after=None)
    return [case.key for case in page.cases], page.total_count


async def link(store: CaseStore, key: str, department: str, *, linked: bool = True) -> None:
    async with store.redis.pipeline(transaction=True) as pipe:
        (link_department_in if linked else unlink_department_in)(pipe, key, department)
        await pipe.execute()


async def test_scopes_are_filtered_in_the_indexes(store: CaseStore) -> None:
    await store.ingest(record("A"))  # 田寮社区, 玉塘街道
    await store.ingest(record("B", minutes=1, place=Place(street="公明街道"), parties=()))
    await store.ingest(record("C", minutes=2, channel="petition"))
    street = Viewer("s", "s", "s", frozenset({Role.STREET}), region_ids=frozenset({"440311005"}))
    assert await found(store, case_scope(street)) == (["petition:C", "hotline12345:A"], 2)
    assert await found(store, Scope(), first=10) == ([], 0)  # a scope granting nothing: nothing
    assert (await found(store, Scope(everything=True)))[1] == 3
    resident = Scope(identity_hashes=IdentityHasher(KEY).hashes(phone=PHONE, id_number=ID_NUMBER))
    assert (await found(store, resident))[1] == 2
    assert await found(store, Scope(petitions=True)) == (["petition:C"], 1)
    assert (await found(store, case_scope(street), first=1))[1] == 2  # totalCount is not the page


async def test_department_links(store: CaseStore) -> None:
    await store.ingest(record("A"))
    await store.ingest(record("B", minutes=1))
    department = Scope(department_ids=frozenset({"dept-labor"}))
    assert (await found(store, department))[1] == 0
    await link(store, "hotline12345:B", "dept-labor")
    assert await found(store, department) == (["hotline12345:B"], 1)
    assert await departments_of(store.redis, ["hotline12345:A", "hotline12345:B"]) == [
        frozenset(), frozenset({"dept-labor"})]
    await link(store, "hotline12345:B", "dept-labor", linked=False)
    assert (await found(store, department))[1] == 0


async def test_a_petition_is_never_shown_to_the_unit_it_complains_about(store: CaseStore,
                                                                     reference: Reference) -> None:
    against = (Party(name="李四", phone=PHONE),
               Party(role="被反映人", name="区人力资源局", is_organisation=True))
    assert respondent_departments(reference, "petition", against) == frozenset({"dept-labor"})
    assert respondent_departments(reference, "hotline12345", against) == frozenset()
    await store.ingest(record("P1", channel="petition", parties=against))
    await store.ingest(record("P2", channel="petition", minutes=1))
    for key in ("petition:P1", "petition:P2"):
        await link(store, key, "dept-labor")
    labor = Viewer("l", "labor", "l", frozenset({Role.DEPARTMENT}), department_id="dept-labor")
    assert await found(store, case_scope(labor)) == (["petition:P2"], 1)
    staff = Viewer("x", "x", "x", frozenset({Role.PETITION_STAFF}), department_id="dept-petition")
    assert (await found(store, case_scope(staff)))[1] == 2


async def test_audited_writes_one_entry_per_write(tmp_path: Path) -> None:
    """``resolvers.rights.audited``: ok, denied or failed — exactly one line each, never the data."""
    log = AuditLog(tmp_path / "audit.jsonl")
    viewer = Viewer("user:yutang", "yutang", "玉塘", frozenset({Role.STREET}))
    ctx = SimpleNamespace(resources=SimpleNamespace(audit=log), viewer=viewer, request=None)
    with audited(ctx, "dispatchCluster", "Q2x1c3Rlcjox") as entry:  # type: ignore[arg-type]
        entry.detail = "派往 dept-labor"
    for error in (Forbidden("no"), ValueError("boom")):
        with pytest.raises(type(error)), audited(ctx, "signAssignment", "X"):  # type: ignore[arg-type]
            raise error
    await log.flush()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(line["action"], line["outcome"], line.get("detail")) for line in lines] == [
        ("dispatchCluster", "ok", "派往 dept-labor"), ("signAssignment", "denied", None),
        ("signAssignment", "failed", "ValueError")]
    assert {line["user"] for line in lines} == {"yutang"}
    log.close()

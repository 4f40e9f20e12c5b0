"""The hostile reference channel through the declarative connector: what the kit cannot see in general —
each ticket delivered once in its newest version, the one broken item quarantined, GB18030 decoded."""

from __future__ import annotations

import asyncio

from connectors.declarative import DeclarativeConnector
from sandbox.hostile.app import STAGES
from tests.servers import serve
from tests.test_conformance import hostile_app, hostile_config, tickets


def test_each_ticket_once_newest_version_broken_one_quarantined() -> None:
    expected = {t.source_id: t for t in tickets("hotline12345")}
    with serve(hostile_app()) as url:
        async def drain() -> tuple[list[object], list[object]]:
            async with DeclarativeConnector(hostile_config(url)) as connector:
                pages = [page async for page in connector.changes(None)]
            return [r for p in pages for r in p.records], [b for p in pages for b in p.rejected]

        records, rejected = asyncio.run(drain())
    newest: dict[str, object] = {}
    for record in records:
        newest[record.source_id] = record  # type: ignore[attr-defined]
    assert len(rejected) == 1
    broken = rejected[0].source_id  # type: ignore[attr-defined]
    assert set(newest) == set(expected) - {broken}
    for source_id, record in newest.items():
        ticket = expected[source_id]
        assert record.updated_at == ticket.updated_at  # type: ignore[attr-defined]
        assert record.source_status == STAGES[ticket.stage]  # type: ignore[attr-defined]
        assert record.title == f"𠮷{ticket.title}"  # type: ignore[attr-defined]
    assert len(records) <= len(newest) + len(newest) // 7 + 1, "duplicates across pages were dropped"

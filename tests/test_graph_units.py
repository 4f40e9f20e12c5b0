"""The graph's small pieces: global ids, masking, media-type negotiation, generated source types."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Literal

import pytest
import strawberry
from pydantic import BaseModel, Field
from strawberry.schema.config import StrawberryConfig

from auth.rights import CaseFacts
from auth.viewer import Viewer
from connectors import Capabilities, ChangePage, Connector, ConnectorInfo, SourceRecord
from gateway.graphql_http import GRAPHQL_RESPONSE, JSON, negotiate
from resolvers.errors import BadUserInput
from resolvers.ids import decode_global_id, decode_id_of, encode_global_id
from resolvers.masking import mask_field
from resolvers.sources import SourceView
from schema.sources import SCALARS, build_source_types, source_type_name
from schema.sources import SourceRecord as SourceRecordInterface


def test_global_ids_round_trip_and_are_url_safe() -> None:
    key = "court:(2024)粤0311民诉前调1234号"
    global_id = encode_global_id("Case", key)
    assert "=" not in global_id
    assert "/" not in global_id
    assert "+" not in global_id
    assert decode_global_id(global_id) == ("Case", key)
    assert decode_id_of("Case", global_id) == key


@pytest.mark.parametrize("bad", ["", "!!!", "Zm9v", encode_global_id("Case", "x")[:-3] + "%%%", "A" * 2000])
def test_malformed_ids_are_bad_user_input(bad: str) -> None:
    with pytest.raises(BadUserInput):
        decode_global_id(bad)


def test_an_id_of_another_type_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput, match="expected the id of a Case"):
        decode_id_of("Case", encode_global_id("Region", "440311"))


def test_source_fields_are_masked_or_withheld() -> None:
    viewer = Viewer.open_access()
    hotline, petition = CaseFacts(channel="hotline12345"), CaseFacts(channel="petition")
    assert mask_field(viewer, hotline, "caller_phone", "13812345678", personal=True) == "138****5678"
    assert mask_field(viewer, hotline, "caller_name", "陈晓明", personal=True) == "陈**"
    assert mask_field(viewer, hotline, "content", "电话13812345678", personal=False) == "电话138****5678"
    assert mask_field(viewer, hotline, "tags", ["13812345678"], personal=False) == ["138****5678"]
    assert mask_field(viewer, petition, "petitioner_name", "陈晓明", personal=True) is None


@pytest.mark.parametrize(("accept", "expected"), [
    (None, JSON), ("*/*", JSON), ("application/json", JSON), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    (f"application/json;q=1, {GRAPHQL_RESPONSE};q=0.5", JSON), (f"{GRAPHQL_RESPONSE};q=0", JSON),
])
def test_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


class Colour(enum.Enum):
    RED = 1


class Person(BaseModel):
    """A party of the case."""

    name: str = Field(json_schema_extra={"personal": True})
    role: Literal["申请人", "被申请人"] = "申请人"


class CourtRecord(SourceRecord):
    """The court's own view of a mediation case."""

    case_number: str = Field(description="案号")
    applicant_phone: str | None = Field(default=None, json_schema_extra={"personal": True})
    remarks: str = Field(default="", description="备注")
    filed_ms: int
    closed_at: dt.datetime | None = None
    parties: tuple[Person, ...] = ()
    colour: Colour = Colour.RED
    misc: dict[str, int] = Field(default_factory=dict)


class CourtConnector(Connector):
    info = ConnectorInfo("court", "诉前调解", "rest", Capabilities())
    source_model = CourtRecord

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:  # pragma: no cover
        yield ChangePage()

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        return {}


class LegalAidConnector(CourtConnector):
    pass


def test_type_names_follow_the_class_or_the_entry_point() -> None:
    assert source_type_name("court", CourtConnector) == "CourtSource"
    assert source_type_name("legalaid", LegalAidConnector) == "LegalAidSource"
    assert source_type_name("my-311", CourtConnector) == "My311Source"


def test_source_types_are_generated_from_the_models() -> None:
    types = build_source_types({"court": CourtConnector, "legalaid": LegalAidConnector})
    record = CourtRecord(source_id="(2024)粤0311民诉前调1号", case_number="(2024)粤0311民诉前调1号",
                         filed_ms=1_700_000_000_000, parties=(Person(name="张三"),), misc={"a": 1},
                         applicant_phone="13812345678", remarks="另一联系电话13912345678")

    @strawberry.type
    class Query:
        @strawberry.field
        def source(self) -> SourceRecordInterface | None:
            return SourceView(record, "legalaid", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), stale=False)  # type: ignore[return-value]

    schema = strawberry.Schema(Query, types=types, config=StrawberryConfig(scalar_map=SCALARS))
    sdl = schema.as_str()
    assert "type LegalAidSource implements SourceRecord" in sdl
    assert "filedMs: Long!" in sdl
    assert '"""案号"""' in sdl
    assert "type CourtSourcePerson" in sdl
    result = schema.execute_sync("""{ source { __typename sourceId stale fetchedAt
        ... on LegalAidSource { caseNumber filedMs closedAt colour misc parties { name role }
                                applicantPhone remarks } } }""",
        context_value=SimpleNamespace(viewer=Viewer.open_access()))
    assert result.errors is None
    assert result.data == {"source": {
        "__typename": "LegalAidSource", "sourceId": record.source_id, "stale": False,
        "fetchedAt": "2026-01-01T00:00:00+00:00", "caseNumber": record.case_number,
        "filedMs": 1_700_000_000_000,
        "closedAt": None, "colour": "1", "misc": {"a": 1}, "parties": [{"name": "张*", "role": "申请人"}],
        "applicantPhone": "138****5678", "remarks": "另一联系电话139****5678"}}

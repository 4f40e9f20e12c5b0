"""The declarative connector's spec: a YAML document describing a JSON REST channel, validated here.

A spec has these sections (every one but ``list`` and ``record`` optional)::

    name: 书记在线                     # display name
    auth:    {type: api_key | bearer | oauth2_client_credentials | hmac | none, …}
    list:    {path, params, records, paging: {type: cursor | page | window | none, …}, since: {…}}
    get:     {path, ids: query | body | path, param, limit, records}
    record:  {id, title, content, status, category, received_at, updated_at, place, parties, extra}
    webhook: {signature_header, timestamp_header, secret, template, records, tolerance}
    write_back: {SIGN | REPLY | RESOLVE | RETURN: {method, path, body, idempotency_header}}
    deadlines: [{step, within, unit}]  # the channel's promises, as data for the deadline policies
    source:  {field name: field expression}   # extra fields of the live record

Credentials are named, never written into a spec: ``credential: api_key`` means the channel's
``credentials.api_key``. Field expressions are described in :mod:`connectors.declarative.mapping`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.errors import ConfigError
from connectors.records import UnifiedStatus, WriteBackKind

__all__ = ["AuthSpec", "ConnectorSpec", "DeadlineSpec", "FieldSpec", "GetSpec", "ListSpec", "PagingSpec",
           "RecordSpec", "TimeSpec", "WebhookSpec", "WriteSpec", "parse_spec"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldSpec(_Spec):
    """Where one value comes from: a dotted ``path`` (``reporter.phone``, ``items.0.name``), or a
    ``const``; then ``map`` (channel value → ours; ``default`` for the rest)."""

    path: str | None = None
    const: Any = None
    map: dict[str, Any] | None = None
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


class TimeSpec(FieldSpec):
    """A time: ``format`` is ``iso``, ``epoch_s``, ``epoch_ms`` or a strftime pattern; ``tz`` is the
    zone of times without an offset (default Asia/Shanghai: Chinese channels speak Beijing time)."""

    format: str = "iso"
    tz: str = "Asia/Shanghai"


class PlaceSpec(_Spec):
    district: FieldSpec | None = None
    street: FieldSpec | None = None
    community: FieldSpec | None = None
    grid: FieldSpec | None = None
    address: FieldSpec | None = None
    lat: FieldSpec | None = None
    lng: FieldSpec | None = None


class PartySpec(_Spec):
    role: FieldSpec = FieldSpec(const="诉求人")
    name: FieldSpec | None = None
    phone: FieldSpec | None = None
    id_number: FieldSpec | None = None


class RecordSpec(_Spec):
    """How one channel record becomes a case record."""

    id: FieldSpec
    title: FieldSpec
    content: FieldSpec | None = None
    status: FieldSpec
    category: FieldSpec | None = None
    received_at: TimeSpec
    updated_at: TimeSpec
    place: PlaceSpec = PlaceSpec()
    parties: list[PartySpec] = []
    extra: dict[str, FieldSpec] = {}

    @model_validator(mode="after")
    def _status_words(self) -> RecordSpec:
        unknown = [str(v) for v in (self.status.map or {}).values() if v not in UnifiedStatus.__members__]
        if unknown:
            raise ValueError(f"status.map values must be unified statuses, not {', '.join(unknown)}")
        return self


class AuthSpec(_Spec):
    type: Literal["none", "api_key", "bearer", "oauth2_client_credentials", "hmac"] = "none"
    location: Literal["header", "query"] = "header"   # api_key
    name: str = "X-Api-Key"                          # api_key: header or parameter name
    credential: str = "api_key"                      # api_key / bearer: the credential holding it
    token_path: str = "/oauth/token"  # noqa: S105 # oauth2: relative to base_url, or absolute
    key_id: str = "key_id"                           # hmac: credential of the key id
    secret: str = "secret"  # noqa: S105          # hmac: credential of the secret
    template: str = "{method}\n{path}\n{timestamp}\n{nonce}\n{body_sha256}"
    encoding: Literal["hex", "base64"] = "hex"

    def required(self) -> list[str]:
        """The credentials this auth needs."""
        return {"none": [], "api_key": [self.credential], "bearer": [self.credential],
                "oauth2_client_credentials": ["client_id", "client_secret"],
                "hmac": [self.key_id, self.secret]}[self.type]


class SinceSpec(_Spec):
    """The incremental filter: ``param`` carries the last update time seen, in ``format``."""

    param: str
    format: str = "iso"
    tz: str = "Asia/Shanghai"


class PagingSpec(_Spec):
    type: Literal["none", "cursor", "page", "window"] = "none"
    size: int = Field(100, ge=1, le=10_000)
    size_param: str | None = "limit"
    cursor_param: str = "cursor"             # cursor: sent back to the channel
    next_cursor: str = "next"                # cursor: path of the next cursor in the answer
    page_param: str = "page"                 # page (and window with size_param): page number
    first_page: int = 1
    start_param: str = "start"               # window
    end_param: str = "end"
    window_days: float = Field(7, gt=0)
    window_format: str = "iso"
    earliest: str | None = None              # window: ISO time the first pass starts at


class ListSpec(_Spec):
    path: str
    params: dict[str, str] = {}
    records: str = ""                        # path of the record list in the answer ("" = the answer)
    paging: PagingSpec = PagingSpec()
    since: SinceSpec | None = None
    lookback_seconds: float = Field(60, ge=0)  # re-read this much before the last update seen


class GetSpec(_Spec):
    path: str                                # may hold {id} for one request per record
    method: Literal["GET", "POST"] = "GET"
    ids: Literal["query", "body", "path"] = "query"
    param: str = "ids"                       # query: comma-joined; body: JSON list under this key
    limit: int = Field(50, ge=1, le=1000)
    records: str = ""


class WebhookSpec(_Spec):
    secret: str = "webhook_secret"  # noqa: S105 # the credential holding the shared secret
    signature_header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"
    template: str = "{timestamp}.{body}"
    encoding: Literal["hex", "base64"] = "hex"
    tolerance: float = 300
    records: str = "data"


class WriteSpec(_Spec):
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str                                # may hold {id}
    body: dict[str, Any] = {}                # values may hold {action_id} {message} {actor} {department} {at}
    idempotency_header: str | None = "Idempotency-Key"
    status: str | None = None                # path of the channel's status word in the answer
    duplicate: str | None = None             # path of a "was a duplicate" flag in the answer


class DeadlineSpec(_Spec):
    """One promise of the channel, e.g. sign within 10 minutes."""

    step: str
    within: float = Field(gt=0)
    unit: Literal["minutes", "hours", "days", "working_days"]
    note: str | None = None


class ConnectorSpec(_Spec):
    name: str | None = None
    auth: AuthSpec = AuthSpec()
    list: ListSpec
    get: GetSpec | None = None
    record: RecordSpec
    webhook: WebhookSpec | None = None
    write_back: dict[WriteBackKind, WriteSpec] = {}
    deadlines: tuple[DeadlineSpec, ...] = ()
    source: dict[str, FieldSpec] = {}
    charset: str | None = None               # when the channel mislabels its bodies


def parse_spec(document: Any, where: str = "spec") -> ConnectorSpec:
    """Validate a parsed spec document.

    Raises:
        ConfigError: listing every problem of the document at once.
    """
    try:
        return ConnectorSpec.model_validate(document)
    except ValidationError as exc:
        raise ConfigError([f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors()]) from None

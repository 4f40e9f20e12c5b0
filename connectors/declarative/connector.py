"""The declarative connector: a JSON REST channel described by a YAML spec, no Python.

In the channels file::

    - key: shuji
      connector: declarative
      name: 书记在线
      base_url: https://shuji.example.gov.cn
      credentials: {api_key: …, webhook_secret: …}
      options:
        spec_file: channels/shuji.yaml   # relative to the channels file; or ``spec:`` inline

The spec's sections are described in :mod:`connectors.declarative.spec`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import yaml

from connectors.auth import ApiKey, BearerToken, ClientCredentials, HmacSigner
from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.declarative.cursor import Cursor, fingerprint
from connectors.declarative.mapping import dig, to_record
from connectors.declarative.paging import Pager
from connectors.declarative.source import DeclarativeSource, to_source
from connectors.declarative.spec import ConnectorSpec, parse_spec
from connectors.errors import BadRecord, ConfigError, UpstreamRejected, WebhookRejected
from connectors.http import Action, classify, send
from connectors.records import ChangePage, Deadline, WriteBackAction, WriteBackResult, utc_now

__all__ = ["DeclarativeConnector", "load_spec", "sign_body"]


def load_spec(options: Mapping[str, Any], where: str = "options") -> ConnectorSpec:
    """The spec named by a channel's options: ``spec`` (inline mapping) or ``spec_file`` (a path).

    Raises:
        ConfigError: neither or both given, the file is unreadable, or the spec is invalid.
    """
    inline, path = options.get("spec"), options.get("spec_file")
    if (inline is None) == (path is None):
        raise ConfigError([f"{where}: give exactly one of spec (inline) or spec_file (a path)"])
    if path is not None:
        try:
            inline = yaml.safe_load(Path(str(path)).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{where}.spec_file: cannot read {path} ({exc.strerror or exc})"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{where}.spec_file: {path} is not valid YAML ({exc})"]) from None
    return parse_spec(inline, f"{where}.spec")


class DeclarativeConnector(Connector):
    """A JSON REST channel described by a spec (see :mod:`connectors.declarative.spec`).

    Options: ``spec`` or ``spec_file``. Credentials: the ones the spec's auth and webhook name.
    """

    info: ClassVar[ConnectorInfo] = ConnectorInfo(key="declarative", name="declarative", kind="rest",
                                                  capabilities=Capabilities())
    source_model: ClassVar[type[SourceRecord]] = DeclarativeSource

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        spec = self.spec = _with_page_size(load_spec(config.options, f"{config.key}.options"),
                                           config.options.get("page_size"))
        needed = list(spec.auth.required())
        if spec.webhook is not None:
            needed.append(spec.webhook.secret)
        problems = [f"{config.key}: credentials.{name} is required (the spec names it)"
                    for name in dict.fromkeys(needed) if not config.credentials.get(name)]
        if problems:
            raise ConfigError(problems)
        self.lookback = timedelta(seconds=spec.list.lookback_seconds)
        self.capabilities = Capabilities(
            pull=True, push=spec.webhook is not None, batch_get=spec.get is not None,
            write_back=bool(spec.write_back),
            batch_limit=spec.get.limit if spec.get and spec.get.ids != "path" else 1)

    def describe(self) -> ConnectorInfo:
        return ConnectorInfo(key=self.config.key, name=self.config.name or self.spec.name or self.config.key,
                             kind="rest", capabilities=self.capabilities)

    def deadlines(self) -> tuple[Deadline, ...]:
        return tuple(Deadline(step=d.step, within=d.within, unit=d.unit, note=d.note)
                     for d in self.spec.deadlines)

    def build_client(self) -> httpx.AsyncClient:
        client = super().build_client()
        auth = self._auth()
        if auth is not None:
            client.auth = auth
        return client

    def _auth(self) -> httpx.Auth | None:
        auth, credentials = self.spec.auth, self.config.credentials
        if auth.type == "api_key":
            return ApiKey(credentials[auth.credential], name=auth.name, location=auth.location)
        if auth.type == "bearer":
            return BearerToken(credentials[auth.credential])
        if auth.type == "oauth2_client_credentials":
            url = auth.token_path if "://" in auth.token_path else self.config.base_url + auth.token_path
            return ClientCredentials(url, credentials["client_id"], credentials["client_secret"])
        if auth.type == "hmac":
            return HmacSigner(credentials[auth.key_id], credentials[auth.secret], template=auth.template,
                              encoding=auth.encoding)
        return None

    async def _json(self, method: str, url: str, *, record: bool = False, **kwargs: Any) -> Any:
        response = await send(self.client, method, url, skip_missing=record, **kwargs)
        if classify(response, record=record) is Action.SKIP_RECORD:
            return None
        charset = self.spec.charset or response.encoding or "utf-8"
        try:
            return json.loads(response.content.decode(charset, errors="replace").lstrip("\ufeff"))
        except (ValueError, LookupError) as exc:
            raise UpstreamRejected(f"{method} {url}: answer is not JSON ({exc})",
                                   status=response.status_code) from None

    # -- changes -------------------------------------------------------------------------------

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        position = Cursor.load(cursor)
        pager = Pager(self.spec.list, self._json, position.floor(self.lookback), utc_now())
        async for raws, done in pager.pages(position):
            page = self._page(raws, position)
            if done:
                position.finish_pass(self.lookback)
            yield ChangePage(records=page.records, rejected=page.rejected, cursor=position.dump())

    def _page(self, raws: list[Any], position: Cursor) -> ChangePage:
        records, rejected = [], []
        for raw in raws:
            try:
                record = to_record(self.spec.record, raw, self.config.key)
            except BadRecord as bad:
                rejected.append(bad)
                continue
            if position.fresh(record.source_id, record.updated_at, fingerprint(raw), self.lookback):
                records.append(record)
        return ChangePage(records=tuple(records), rejected=tuple(rejected))

    # -- batch get -------------------------------------------------------------------------------

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        get = self.spec.get
        found: dict[str, SourceRecord | None] = dict.fromkeys(source_ids)
        if get is None:
            raise UpstreamRejected(f"channel {self.config.key!r}: its spec has no get section")
        ids = list(found)
        size = 1 if get.ids == "path" else get.limit
        for start in range(0, len(ids), size):
            for raw in await self._batch(ids[start:start + size]):
                source = to_source(self.spec, raw)
                if source is not None and source.source_id in found:
                    found[source.source_id] = source
        return found

    async def _batch(self, chunk: list[str]) -> list[Any]:
        get = self.spec.get
        assert get is not None
        if get.ids == "path":
            body = await self._json(get.method, get.path.format(id=quote(chunk[0], safe="")), record=True)
            item = None if body is None else dig(body, get.records)
            return [] if item is None else [item]
        kwargs: dict[str, Any] = ({"params": {get.param: ",".join(chunk)}} if get.ids == "query"
                                  else {"json": {get.param: chunk}})
        items = dig(await self._json(get.method, get.path, **kwargs), get.records)
        if not isinstance(items, list):
            raise UpstreamRejected(f"{get.method} {get.path}: answer has no record list at {get.records!r}")
        return items

    # -- webhooks --------------------------------------------------------------------------------

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                            now: datetime | None = None) -> ChangePage:
        hook = self.spec.webhook
        if hook is None:
            raise WebhookRejected(f"channel {self.config.key!r} does not push")
        lower = {name.lower(): value for name, value in headers.items()}
        timestamp = lower.get(hook.timestamp_header.lower(), "").strip()
        given = lower.get(hook.signature_header.lower(), "").strip()
        if not (timestamp and given):
            raise WebhookRejected(f"missing {hook.timestamp_header} or {hook.signature_header}")
        expected = sign_body(self.config.credentials[hook.secret], hook.template, timestamp, body,
                             hook.encoding)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise WebhookRejected("signature does not match")
        try:
            sent = float(timestamp)
        except ValueError:
            raise WebhookRejected(f"{hook.timestamp_header} is not unix seconds") from None
        if abs((now or utc_now()).timestamp() - sent) > hook.tolerance:
            raise WebhookRejected(f"timestamp is more than {hook.tolerance:.0f} s away from now")
        try:
            items = dig(json.loads(body), hook.records)
        except ValueError:
            raise WebhookRejected("signed body is not JSON") from None
        return self._page(items if isinstance(items, list) else [items], Cursor())

    # -- write-back ------------------------------------------------------------------------------

    async def write_back(self, action: WriteBackAction) -> WriteBackResult:
        write = self.spec.write_back.get(action.kind)
        if write is None:
            raise UpstreamRejected(f"channel {self.config.key!r} takes no {action.kind} write-back")
        values = {"id": action.source_id, "action_id": action.action_id, "message": action.message,
                  "actor": action.actor, "department": action.department or "", "kind": action.kind.value,
                  "at": action.at.isoformat()}
        headers = {write.idempotency_header: action.action_id} if write.idempotency_header else {}
        answer = await self._json(write.method, write.path.format(id=quote(action.source_id, safe="")),
                                  json=_fill(write.body, values), headers=headers)
        status = dig(answer, write.status) if write.status else None
        duplicate = bool(dig(answer, write.duplicate)) if write.duplicate else False
        return WriteBackResult(action_id=action.action_id, accepted=True, duplicate=duplicate,
                               source_status=None if status is None else str(status))


def sign_body(secret: str, template: str, timestamp: str, body: bytes, encoding: str = "hex") -> str:
    """The signature a declarative channel sends with a webhook: HMAC-SHA256 over ``template``
    (``{timestamp}`` and ``{body}``, the body as UTF-8 text)."""
    message = template.format(timestamp=timestamp, body=body.decode("utf-8", errors="replace"))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, Mapping):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, values) for value in template]
    return template



def _with_page_size(spec: ConnectorSpec, size: Any) -> ConnectorSpec:
    """``options.page_size`` overrides the spec's page size (a deployment's choice, not the channel's)."""
    if size is None:
        return spec
    try:
        paging = spec.list.paging.model_validate({**spec.list.paging.model_dump(), "size": size})
    except ValueError as exc:
        raise ConfigError([f"options.page_size: {exc}"]) from None
    return spec.model_copy(update={"list": spec.list.model_copy(update={"paging": paging})})

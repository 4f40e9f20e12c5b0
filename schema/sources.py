"""``Case.source``: one GraphQL type per installed connector, generated from its ``source_model``.

Each connector declares the live record it serves as a pydantic model (a subclass of
:class:`connectors.SourceRecord`). :func:`build_source_types` turns each into a strawberry type
named ``<Key>Source`` (``Hotline12345Source``, ``MayorSource`` …) implementing the
:class:`SourceRecord` interface; nested models become their own types (``CourtSourceParty``).
Python ``int`` becomes ``Long``: channel systems send 64-bit numbers (epoch milliseconds) that
GraphQL's 32-bit ``Int`` cannot carry. Text is masked for display like the rest of the graph:
fields the connector marks ``json_schema_extra={"personal": True}`` by kind (phone, ID number,
name), other text for phone and ID numbers typed into it.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NewType

import strawberry
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from auth.rights import CaseFacts
from connectors import Connector
from resolvers.context import GraphContext
from resolvers.masking import mask_field
from resolvers.sources import SourceView, scoped_records

__all__ = ["SCALARS", "Long", "SourceRecord", "build_source_types", "source_type_name"]

log = logging.getLogger(__name__)

Long = NewType("Long", int)
SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(name="Long", serialize=int, parse_value=int,
                            description="A 64-bit integer (epoch milliseconds …), as a JSON number.")}
"""The scalars the generated types use, for ``StrawberryConfig.scalar_map``."""

INTERFACE_FIELDS = frozenset({"source_id", "fetched_at", "stale"})
_SCALARS: dict[Any, Any] = {str: str, bool: bool, float: float, int: Long, dt.datetime: dt.datetime,
                            dt.date: dt.date, dt.time: dt.time, Decimal: Decimal, uuid.UUID: str}
_SEQUENCES = {list, tuple, set, frozenset, typing.Sequence, typing.AbstractSet, typing.Collection,
              typing.Iterable}


@strawberry.interface(description="The live record of a case in its channel's system, typed per channel.")
class SourceRecord:
    source_id: str = strawberry.field(description="the channel's own id of the ticket")
    fetched_at: dt.datetime = strawberry.field(description="when the gateway fetched it from the channel")
    stale: bool = strawberry.field(
        description="served from the gateway's cache while the channel could not confirm it is current")


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def source_type_name(entry_name: str, connector: type[Connector]) -> str:
    """``<Key>Source``: the class's own spelling when it spells the entry point, else the entry point's."""
    base = connector.__name__.removesuffix("Connector")
    if base.lower() != entry_name.replace("_", "").replace("-", "").lower():
        base = _pascal(entry_name)
    return f"{base}Source"


@dataclass(frozen=True, slots=True)
class _Mapped:
    """How one Python annotation shows in GraphQL."""

    graphql_type: Any
    convert: Callable[[Any], Any] | None = None  # applied to the value before it is served
    text: bool = False                           # free text (or a list of it): masked for display
    nested: bool = False                         # a nested model (or list of them): gets the case's facts


_OPAQUE = _Mapped(JSON, None)


class _TypeBuilder:
    """Turns one connector's pydantic models into strawberry types, nested models included."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.nested: dict[type[BaseModel], Any] = {}

    def mapped(self, annotation: Any) -> _Mapped:
        """The GraphQL type of a Python annotation, with its converter."""
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            return self.mapped(typing.get_args(annotation)[0])
        if origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                inner = self.mapped(members[0])
                return _Mapped(inner.graphql_type | None, inner.convert, inner.text, inner.nested)
            return _Mapped(JSON | None, _jsonable)
        if origin in _SEQUENCES or annotation in _SEQUENCES:
            args = typing.get_args(annotation)
            inner = self.mapped(args[0]) if args else _Mapped(JSON, _jsonable)
            convert = inner.convert
            return _Mapped(types.GenericAlias(list, (inner.graphql_type,)),
                           None if convert is None else lambda items: [convert(i) for i in items], inner.text,
                           inner.nested)
        if origin is typing.Literal:
            return _Mapped(str, str)
        if isinstance(annotation, type):
            return self._class_type(annotation)
        return _Mapped(JSON, _jsonable)

    def _class_type(self, annotation: type) -> _Mapped:
        if annotation is str:
            return _Mapped(str, None, text=True)
        if annotation in _SCALARS:
            return _Mapped(_SCALARS[annotation], str if annotation is uuid.UUID else None)
        if issubclass(annotation, enum.Enum):
            return _Mapped(str, _enum_value)
        if issubclass(annotation, BaseModel):
            return _Mapped(self.object_type(annotation), nested=True)
        return _Mapped(JSON, _jsonable)

    def object_type(self, model: type[BaseModel]) -> Any:
        if model not in self.nested:
            name = f"{self.type_name}{model.__name__}"
            self.nested[model] = _strawberry_type(name, model, self._fields(model, skip=frozenset()), ())
        return self.nested[model]

    def _fields(self, model: type[BaseModel], skip: frozenset[str]) -> dict[str, tuple[Any, Any]]:
        fields: dict[str, tuple[Any, Any]] = {}
        for name, info in model.model_fields.items():
            if name in skip:
                continue
            mapped = self.mapped(info.annotation)
            nullable = typing.get_origin(mapped.graphql_type) in (typing.Union, types.UnionType)
            if _is_personal(info) and not nullable:  # personal data may be withheld from a viewer
                mapped = _Mapped(mapped.graphql_type | None, mapped.convert, mapped.text, mapped.nested)
            fields[name] = (mapped.graphql_type, _field(name, info, mapped))
        return fields


def _enum_value(value: Any) -> Any:
    return None if value is None else str(value.value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (dt.datetime, dt.date, dt.time, Decimal, uuid.UUID, enum.Enum)):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def _is_personal(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("personal"))


def _field(name: str, info: FieldInfo, mapped: _Mapped) -> Any:
    description = info.description
    convert, personal = mapped.convert, _is_personal(info)
    if convert is None and not mapped.text and not personal and not mapped.nested:
        return strawberry.field(description=description)

    def resolve(root: Any, info: strawberry.Info[GraphContext, None]) -> Any:
        value = getattr(root, name)
        if value is None:
            return None
        if convert is not None:
            value = convert(value)
        # Nested records (a petition's 信访人列表) are masked with the case's facts like the top level.
        facts: CaseFacts = getattr(root, "facts", None) or CaseFacts(channel="")
        unmask = bool(getattr(root, "unmask", False))
        if mapped.nested:
            return scoped_records(value, facts, unmask)
        if mapped.text or personal:
            value = mask_field(info.context.viewer, facts, name, value, personal=personal, unmask=unmask)
        return value

    return strawberry.field(resolver=resolve, graphql_type=mapped.graphql_type, description=description)


def _description(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    if not doc or doc == BaseModel.__doc__:
        return None
    return doc.strip().split("\n\n")[0]


def _strawberry_type(name: str, model: type[BaseModel], fields: Mapping[str, tuple[Any, Any]],
                     bases: tuple[type, ...], is_type_of: Callable[[Any, Any], bool] | None = None) -> Any:
    namespace: dict[str, Any] = {"__annotations__": {key: value[0] for key, value in fields.items()},
                                 "__module__": __name__}
    namespace.update({key: value[1] for key, value in fields.items()})
    if is_type_of is not None:
        namespace["is_type_of"] = staticmethod(is_type_of)
    cls = type(name, bases, namespace)
    return strawberry.type(cls, name=name, description=_description(model))


def _source_type(entry_name: str, connector: type[Connector]) -> Any:
    type_name = source_type_name(entry_name, connector)
    builder = _TypeBuilder(type_name)
    fields = builder._fields(connector.source_model, skip=INTERFACE_FIELDS)

    def is_type_of(obj: Any, _info: Any) -> bool:
        return isinstance(obj, SourceView) and obj.connector == entry_name

    return _strawberry_type(type_name, connector.source_model, fields, (SourceRecord,), is_type_of)


def build_source_types(connectors: Mapping[str, type[Connector]]) -> list[Any]:
    """One strawberry type per connector (entry-point name → class), each implementing SourceRecord."""
    built: list[Any] = []
    names: set[str] = set()
    for entry_name, connector in sorted(connectors.items()):
        name = source_type_name(entry_name, connector)
        if name in names:
            log.warning("connector %r: source type %s already exists; its Case.source is left untyped",
                        entry_name, name)
            continue
        names.add(name)
        built.append(_source_type(entry_name, connector))
    return built

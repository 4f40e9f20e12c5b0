"""Operation limits, measured with every fragment spread expanded, before the document is validated.

Depth, alias and cost limiters have been bypassed again and again through fragments (a fragment
spread counted once however often it is used, a fragment named ``__schema`` taken for
introspection, a cycle of fragments that never ends). So one walk measures the selected operation
as it will execute — every spread and inline fragment expanded, each fragment measured once and
reused (so a "fragment bomb" costs the walk nothing) — and a cycle ends the walk at once:

* **depth**: the deepest nesting of fields; a real ``__schema``/``__type`` root field (not a
  fragment of that name) is exempt, since GraphiQL's own introspection query nests deeper;
* **aliases**: aliased fields, each counted as often as it is executed;
* **root fields**: fields of the root type (``__typename`` aside); the rate limiter charges these;
* **cost**: an estimate of the objects the answer holds: each object field is 1, times the list
  sizes around it — a slicing argument (``first``/``last``) where given (a connection's ``nodes``
  and ``edges`` take their parent's), ``default_list_size`` for other lists.

:class:`LimitedValidation` runs this before graphql-core's validation (which is the costlier step
and has its own worst cases) and answers ``QUERY_TOO_COMPLEX``; in production the message names
the limit that was hit but never the configured numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)
from graphql.type.definition import GraphQLInterfaceType
from strawberry.extensions import ValidationCache

__all__ = ["FragmentCycle", "LimitedValidation", "Measure", "OperationLimits", "check_limits",
           "count_root_fields", "measure"]

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
SLICING_ARGUMENTS = ("first", "last")
SIZED_CHILDREN = frozenset({"nodes", "edges"})


@dataclass(frozen=True, slots=True)
class OperationLimits:
    """The limits one operation must stay within; ``reveal`` puts the numbers into the messages."""

    max_depth: int = 15
    max_aliases: int = 30
    max_root_fields: int = 20
    max_cost: int = 25_000
    default_list_size: int = 10
    reveal: bool = True


@dataclass(frozen=True, slots=True)
class Measure:
    """What the selected operation amounts to once its fragments are expanded."""

    depth: int = 0
    aliases: int = 0
    root_fields: int = 0
    cost: int = 0


class FragmentCycle(Exception):
    """A fragment spreads itself, directly or through others."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class _Sub:
    depth: int = 0
    aliases: int = 0
    cost: int = 0

    def __add__(self, other: _Sub) -> _Sub:
        return _Sub(max(self.depth, other.depth), self.aliases + other.aliases, self.cost + other.cost)


class _Walker:
    """One operation's walk; fragments are measured once per (name, inherited list size)."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any],
                 default_list_size: int) -> None:
        self.schema = schema
        self.variables = variables
        self.default = default_list_size
        self.fragments = _fragments(document)
        self._memo: dict[tuple[str, int | None], _Sub] = {}
        self._active: set[str] = set()

    def selections(self, node: SelectionSetNode | None, parent: GraphQLNamedType | None,
                   sized: int | None) -> _Sub:
        total = _Sub()
        for selection in node.selections if node is not None else ():
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, sized)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._type(condition.name.value) if condition is not None else parent
                total += self.selections(selection.selection_set, inner, sized)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection.name.value, sized)
        return total

    def spread(self, name: str, sized: int | None) -> _Sub:
        if name in self._active:
            raise FragmentCycle(name)
        fragment = self.fragments.get(name)
        if fragment is None:
            return _Sub()  # validation reports the unknown fragment
        key = (name, sized)
        if key not in self._memo:
            self._active.add(name)
            try:
                parent = self._type(fragment.type_condition.name.value)
                self._memo[key] = self.selections(fragment.selection_set, parent, sized)
            finally:
                self._active.discard(name)
        return self._memo[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, sized: int | None) -> _Sub:
        aliases = 1 if node.alias is not None else 0
        field_type = self._field_type(parent, node.name.value)
        leaf = field_type is not None and is_leaf_type(get_named_type(field_type))
        if node.selection_set is None or leaf:
            return _Sub(1, aliases, 0)
        is_list = field_type is not None and isinstance(get_nullable_type(field_type), GraphQLList)
        slice_size = self._slice(node)
        multiplier, passed_down = 1, None
        if slice_size is not None and is_list:
            multiplier = slice_size
        elif slice_size is not None:
            passed_down = slice_size  # a connection: its nodes/edges are the sized lists
        elif is_list:
            multiplier = sized if sized is not None and node.name.value in SIZED_CHILDREN else self.default
        named = get_named_type(field_type) if field_type is not None else None
        inner = self.selections(node.selection_set, named, passed_down)
        return _Sub(inner.depth + 1, aliases + inner.aliases, 1 + multiplier * inner.cost)

    def _slice(self, node: FieldNode) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value not in SLICING_ARGUMENTS:
                continue
            value: Any = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(value, 0)
            return self.default
        return None

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)

    @staticmethod
    def _field_type(parent: GraphQLNamedType | None, name: str) -> Any:
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            definition = parent.fields.get(name)
            return None if definition is None else definition.type
        return None


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


def _root_fields(fragments: Mapping[str, FragmentDefinitionNode], node: SelectionSetNode,
                 seen: frozenset[str] = frozenset()) -> Iterator[FieldNode]:
    for selection in node.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(fragments, selection.selection_set, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                raise FragmentCycle(name)
            fragment = fragments.get(name)
            if fragment is not None:
                yield from _root_fields(fragments, fragment.selection_set, seen | {name})


def count_root_fields(document: DocumentNode, operation_name: str | None = None) -> int:
    """Root fields of the operation that would run, fragments expanded (0 when none can be chosen)."""
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    fragments = _fragments(document)
    try:
        return sum(1 for node in _root_fields(fragments, operation.selection_set)
                   if node.name.value != "__typename")
    except FragmentCycle:
        return 0


def measure(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None = None,
            variables: Mapping[str, Any] | None = None, *, default_list_size: int = 10) -> Measure | None:
    """The measure of the operation that would run; ``None`` when none can be chosen.

    Raises:
        FragmentCycle: a fragment spread within itself.
    """
    operation = _operation(document, operation_name)
    if operation is None:
        return None
    walker = _Walker(schema, document, variables or {}, default_list_size)
    root_type = schema.get_root_type(operation.operation)
    depth = aliases = cost = roots = 0
    for node in _root_fields(walker.fragments, operation.selection_set):
        sub = walker.field(node, root_type, None)
        aliases += sub.aliases
        if node.name.value in INTROSPECTION_ROOTS:
            continue
        if node.name.value != "__typename":
            roots += 1
        depth, cost = max(depth, sub.depth), cost + sub.cost
    return Measure(depth=depth, aliases=aliases, root_fields=roots, cost=cost)


def _too_complex(limit: str, value: int, allowed: int, reveal: bool) -> GraphQLError:
    detail = f": {value} where at most {allowed} is allowed" if reveal else ""
    return GraphQLError(f"The operation is too complex ({limit}{detail}).",
                        extensions={"code": "QUERY_TOO_COMPLEX", "limit": limit})


def check_limits(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
                 variables: Mapping[str, Any] | None, limits: OperationLimits) -> list[GraphQLError]:
    """The errors for everything ``document``'s operation exceeds (empty when it is within limits)."""
    try:
        found = measure(schema, document, operation_name, variables,
                        default_list_size=limits.default_list_size)
    except FragmentCycle as cycle:
        return [GraphQLError(f'Cannot spread fragment "{cycle.name}" within itself.',
                             extensions={"code": "GRAPHQL_VALIDATION_FAILED"})]
    if found is None:
        return []
    checks = (("depth", found.depth, limits.max_depth), ("aliases", found.aliases, limits.max_aliases),
              ("root fields", found.root_fields, limits.max_root_fields),
              ("cost", found.cost, limits.max_cost))
    return [_too_complex(name, value, allowed, limits.reveal)
            for name, value, allowed in checks if value > allowed]


class LimitedValidation(ValidationCache):
    """strawberry's validation cache, with the operation limits checked first (cheaper, and safer)."""

    def __init__(self, limits: OperationLimits, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            errors = check_limits(context.schema._schema, context.graphql_document, context.operation_name,
                                  context.variables, self.limits)
            if errors:
                context.pre_execution_errors = errors
                yield
                return
        yield from super().on_validate()

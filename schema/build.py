"""Assembling the schema: the query root, one source type per connector, the extensions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLError, ValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.types import ExecutionContext, Info

from connectors import Connector
from resolvers.errors import BadUserInput
from schema.errors import ErrorCodes, log_errors
from schema.events import Subscription
from schema.limits import LimitedValidation, OperationLimits
from schema.mutation import Mutation
from schema.query import Query
from schema.sources import SCALARS, build_source_types

__all__ = ["GraphSchema", "SchemaOptions", "build_schema"]

DOCUMENT_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class SchemaOptions:
    """How the schema behaves; the gateway fills this from its settings."""

    production: bool = False
    max_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 5000
    max_root_fields: int = 20
    max_cost: int = 25_000
    default_list_size: int = 10
    max_batch: int = 0  # operations in one JSON-array request; 0: batching off

    def limits(self) -> OperationLimits:
        """The operation limits; production names the limit hit but not its number."""
        return OperationLimits(max_depth=self.max_depth, max_aliases=self.max_aliases,
                               max_root_fields=self.max_root_fields, max_cost=self.max_cost,
                               default_list_size=self.default_list_size, reveal=not self.production)


class GraphSchema(strawberry.federation.Schema):
    """The Minsheng schema: logs errors its own way (traces only for the unexpected)."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        log_errors(errors)

    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        """Federation's ``_entities``, refusing malformed representations with ``BAD_USER_INPUT``.

        strawberry's own resolver trusts them: a string, an unknown ``__typename`` or a missing key
        would surface as an internal error (found by tests/test_fuzz.py).
        """
        for representation in representations:
            if not (isinstance(representation, dict) and self._is_entity(representation.get("__typename"))
                    and isinstance(representation.get("id"), str)):
                raise BadUserInput("each representation must be an object with the __typename and id of an "
                                   "entity type (Case, Channel …)")
        return super().entities_resolver(info, representations)

    def _is_entity(self, type_name: object) -> bool:
        if not isinstance(type_name, str) or type_name not in self.schema_converter.type_map:
            return False
        definition = self.schema_converter.type_map[type_name].definition
        return hasattr(getattr(definition, "origin", None), "resolve_reference")


class NoServiceSdlRule(ValidationRule):
    """Production hides the schema: federation's ``_service { sdl }`` would publish it all the same."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        parent = self.context.get_parent_type()
        if node.name.value == "_service" and parent is not None and parent.name == "Query":
            self.report_error(GraphQLError("GraphQL introspection has been disabled, but the requested query "
                                           "contained the field '_service'.", node))


class DocumentCache(ParserCache):
    """strawberry's parser cache, except that a syntax error takes the schema's own path.

    ``ParserCache`` raises syntax errors from its hook, past every extension's ``on_operation``, so
    they would reach the client without a code. Leaving the document unset makes the schema parse
    again (rare: only broken documents) and report the error as a result like any other.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


def _extensions(options: SchemaOptions,
                extra: Sequence[Callable[[], SchemaExtension]]) -> list[Callable[[], SchemaExtension]]:
    # Validation rules are built once so the validation cache (keyed by the rules) keeps hitting; depth
    # and aliases are measured by LimitedValidation, with fragments expanded, before validation.
    rules: list[Any] = [NoSchemaIntrospectionCustomRule, NoServiceSdlRule] if options.production else []
    limits = options.limits()
    return [
        *extra,  # outermost: they see the result after the error codes are set
        lambda: ErrorCodes(hide_suggestions=options.production),
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: LimitedValidation(limits, maxsize=DOCUMENT_CACHE_SIZE),
    ]


def _batching(options: SchemaOptions) -> BatchingConfig | None:
    return BatchingConfig(max_operations=options.max_batch) if options.max_batch > 0 else None


def build_schema(connectors: Mapping[str, type[Connector]], options: SchemaOptions | None = None, *,
                 extensions: Sequence[Callable[[], SchemaExtension]] = ()) -> GraphSchema:
    """The schema for these installed connectors (entry-point name → class).

    Args:
        connectors: each contributes its ``source_model`` as a ``<Key>Source`` type.
        options: production switches and query limits.
        extensions: extra extension factories (e.g. metrics), run outside the error-code rewrite.
    """
    options = options or SchemaOptions()
    return GraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=build_source_types(connectors),
        extensions=_extensions(options, extensions),
        config=StrawberryConfig(disable_field_suggestions=options.production, scalar_map=SCALARS,
                                batching_config=_batching(options)),
    )

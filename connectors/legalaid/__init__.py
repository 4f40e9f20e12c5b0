"""The legal-aid (法律援助) connector: the gateway as a GraphQL client of the legal-aid system."""

from __future__ import annotations

from connectors.legalaid.client import BearerToken, FieldError, GraphQLClient, GraphQLResult, error_for
from connectors.legalaid.connector import LegalAidConnector
from connectors.legalaid.records import LegalAidSource

__all__ = ["BearerToken", "FieldError", "GraphQLClient", "GraphQLResult", "LegalAidConnector",
           "LegalAidSource", "error_for"]

"""The legal-aid system 法律援助 (sandbox): a GraphQL API (contract: ``schema.graphql``) with bearer auth."""

from __future__ import annotations

from sandbox.legalaid.app import create_app

__all__ = ["create_app"]

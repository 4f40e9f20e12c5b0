"""Login wiring: from the settings to an identity provider, a token validator and an authenticator.

``MINSHENG_AUTH=embedded`` (the default) runs :class:`auth.idp.IdentityProvider` in the gateway
(``POST /auth/token``, discovery, JWKS) and validates its tokens through the very same
:class:`auth.tokens.TokenValidator` path an external provider's go through, reading the keys in
process. Its signing key comes from ``MINSHENG_IDP_KEY_FILE`` or, unset, is generated once and
shared through Redis so that every replica signs and verifies with the same key.
``MINSHENG_AUTH=oidc`` validates an external provider's tokens against its JWKS URL and runs no
provider of its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from auth.accounts import AccountBook
from auth.audit import AuditLog
from auth.context import Authenticator
from auth.identity import IdentityHasher
from auth.idp import IdentityProvider, deferred_routes
from auth.keys import SigningKey, shared_signing_key
from auth.tokens import TokenValidator
from gateway.settings import Settings

__all__ = ["Login", "login", "login_routes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Login:
    """What the lifespan builds for login: the provider (embedded only) and the authenticator."""

    authenticator: Authenticator
    idp: IdentityProvider | None


async def _signing_key(settings: Settings, redis: Any) -> SigningKey:
    if settings.idp_key_file is not None:
        return SigningKey.from_pem(settings.idp_key_file)
    return await shared_signing_key(redis)


@contextlib.asynccontextmanager
async def login(settings: Settings, redis: Any, hasher: IdentityHasher,
                audit: AuditLog) -> AsyncIterator[Login]:
    """The provider and authenticator ``settings`` ask for; closes the validator's HTTP client after."""
    idp: IdentityProvider | None = None
    if settings.auth == "embedded":
        idp = IdentityProvider(settings.issuer, settings.oidc_audience,
                               AccountBook.load(settings.accounts_file),
                               signing_key=await _signing_key(settings, redis), redis=redis, hasher=hasher,
                               audit=audit, token_ttl=settings.token_ttl, base_url=settings.base_url)
        validator = TokenValidator(settings.issuer, settings.oidc_audience, idp,
                                   algorithms=settings.algorithms)
        log.info("login: embedded identity provider at %s/auth/token", settings.base_url)
        if settings.production and settings.accounts_file is None:
            log.warning("MINSHENG_ACCOUNTS_FILE is not set: the public demo accounts (password demo) "
                        "can log in")
    else:
        assert settings.oidc_jwks_url is not None  # settings.issuer checked it
        validator = TokenValidator(settings.issuer, settings.oidc_audience, settings.oidc_jwks_url,
                                   algorithms=settings.algorithms)
        log.info("login: tokens of %s (keys from %s)", settings.issuer, settings.oidc_jwks_url)
    try:
        yield Login(Authenticator(validator, hasher=hasher), idp)
    finally:
        await validator.aclose()


def _provider(request: Request) -> IdentityProvider | None:
    found: IdentityProvider | None = getattr(request.app.state, "idp", None)
    return found


def login_routes(settings: Settings, lookup: Callable[[Request], IdentityProvider | None] = _provider,
                 ) -> list[BaseRoute]:
    """``/auth/token`` and the ``/.well-known`` documents, when the embedded provider runs."""
    return list(deferred_routes(lookup)) if settings.auth == "embedded" else []

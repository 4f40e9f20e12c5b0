"""From a request to a :class:`~auth.viewer.Viewer`: bearer token → validated claims → viewer.

The same path serves HTTP requests (the ``Authorization`` header) and WebSocket subscriptions
(the ``connection_init`` payload of graphql-transport-ws, which browsers must use because they
cannot set headers on a WebSocket). No token gives the anonymous viewer; a token that does not
validate raises :class:`~auth.errors.InvalidToken` — a bad token is never silently anonymous.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auth.errors import InvalidToken, TokenReason
from auth.identity import IdentityHasher
from auth.tokens import TokenValidator
from auth.viewer import Role, Viewer

__all__ = ["Authenticator", "authenticate", "bearer_token", "viewer_from_claims"]

_ROLES = {role.value: role for role in Role if role is not Role.OPEN}  # "open" never comes from a token


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; ``None`` when there is none.

    Raises:
        InvalidToken: an Authorization value that is not a single bearer token (Basic, empty, …).
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken(TokenReason.MALFORMED)
    return token


def _authorization_header(headers: Mapping[str, str]) -> str | None:
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):  # starlette Headers: a repeated Authorization header is refused, not guessed at
        values = list(getlist("authorization"))
        if len(values) > 1:
            raise InvalidToken(TokenReason.MALFORMED)
        return values[0] if values else None
    for name, value in headers.items():
        if name.lower() == "authorization":
            return value
    return None


def _strings(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(TokenReason.INVALID_CLAIM)
    return value


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    return frozenset(_strings(claims, "scp"))


def _identity_hashes(claims: Mapping[str, Any], hasher: IdentityHasher | None) -> frozenset[str]:
    """Hashes the token carries (the embedded provider's), plus a *verified* OIDC phone number's."""
    found = set(_strings(claims, "identity_hashes"))
    phone = claims.get("phone_number")
    if hasher is not None and isinstance(phone, str) and claims.get("phone_number_verified") is True:
        hashed = hasher.phone(phone)
        if hashed:
            found.add(hashed)
    return frozenset(found)


def viewer_from_claims(claims: Mapping[str, Any], *, hasher: IdentityHasher | None = None) -> Viewer:
    """The viewer a validated token describes; unknown role names are ignored, ``open`` never granted."""
    roles = frozenset(_ROLES[name] for name in _strings(claims, "roles") if name in _ROLES)
    department = claims.get("department_id")
    if department is not None and not isinstance(department, str):
        raise InvalidToken(TokenReason.INVALID_CLAIM)
    sub = str(claims["sub"])
    username = claims.get("preferred_username")
    username = username if isinstance(username, str) and username else sub
    name = claims.get("name")
    return Viewer(subject=sub, username=username, display_name=name if isinstance(name, str) else username,
                  roles=roles, region_ids=frozenset(_strings(claims, "region_ids")), department_id=department,
                  identity_hashes=_identity_hashes(claims, hasher), scopes=_scopes(claims),
                  claims=dict(claims))


class Authenticator:
    """Turns credentials into viewers with one validator (and the identity hasher, for OIDC phones)."""

    def __init__(self, validator: TokenValidator, *, hasher: IdentityHasher | None = None) -> None:
        self.validator = validator
        self.hasher = hasher

    async def authenticate_token(self, token: str | None) -> Viewer:
        if token is None:
            return Viewer.anonymous()
        claims = await self.validator.validate(token)
        return viewer_from_claims(claims, hasher=self.hasher)

    async def authenticate(self, headers: Mapping[str, str]) -> Viewer:
        """The viewer of an HTTP request's headers (``Authorization: Bearer …``)."""
        return await self.authenticate_token(bearer_token(_authorization_header(headers)))

    async def authenticate_connection(self, payload: Mapping[str, Any] | None) -> Viewer:
        """The viewer of a graphql-transport-ws ``connection_init`` payload.

        Accepted: ``{"Authorization": "Bearer …"}`` (any case) or ``{"access_token": "…"}``.
        """
        if not payload:
            return Viewer.anonymous()
        lowered = {str(key).lower(): value for key, value in payload.items()}
        if "authorization" in lowered:
            value = lowered["authorization"]
            if not isinstance(value, str):
                raise InvalidToken(TokenReason.MALFORMED)
            return await self.authenticate_token(bearer_token(value))
        token = lowered.get("access_token")
        if token is not None and not isinstance(token, str):
            raise InvalidToken(TokenReason.MALFORMED)
        return await self.authenticate_token(token)


async def authenticate(headers: Mapping[str, str], validator: TokenValidator, *,
                       hasher: IdentityHasher | None = None) -> Viewer:
    """``Authorization: Bearer`` → :class:`Viewer`; no header → anonymous; a bad token raises InvalidToken."""
    return await Authenticator(validator, hasher=hasher).authenticate(headers)

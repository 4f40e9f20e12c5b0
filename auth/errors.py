"""Typed errors of login and rights, classified by what the gateway answers.

The tree, with when each is raised::

    AuthError                   base of everything auth raises on purpose
    ├── InvalidToken            a bearer token was presented and refused: HTTP 401 / ``UNAUTHENTICATED``;
    │                           ``reason`` says why (for logs and metrics; clients get a generic message)
    ├── KeysUnavailable         the identity provider's JWKS could not be fetched and none are cached:
    │                           HTTP 503, try again later (not the client's fault)
    └── ReplayRejected          a webhook request was seen before (same fingerprint within the window)

Messages from libraries below (PyJWT, httpx, redis) are translated here once, at the boundary,
and never reach a client: :attr:`AuthError.public_message` is what an answer may carry.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuthError", "InvalidToken", "KeysUnavailable", "ReplayRejected", "TokenReason"]


class TokenReason(StrEnum):
    """Why a token was refused. Stable codes for logs, metrics and tests."""

    MALFORMED = "malformed"              # not a JWS compact token, bad base64/JSON, too long, wrong scheme
    ALGORITHM = "algorithm"              # alg not pinned (none, HS*, …) or not matching the key's type
    UNKNOWN_KEY = "unknown_key"          # kid not in the provider's JWKS, even after one refetch
    SIGNATURE = "signature"              # signature does not verify (tampered, or another provider's key)
    EXPIRED = "expired"                  # exp in the past (beyond the leeway)
    NOT_YET_VALID = "not_yet_valid"      # nbf or iat in the future (beyond the leeway)
    ISSUER = "issuer"                    # iss is not the configured issuer
    AUDIENCE = "audience"                # aud does not contain the configured audience
    MISSING_CLAIM = "missing_claim"      # a required claim (exp, iat, iss, aud, sub) is absent
    INVALID_CLAIM = "invalid_claim"      # a claim has the wrong type (iat not a number, roles not a list …)


class AuthError(Exception):
    """Base of every error auth raises on purpose."""

    public_message = "认证失败"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.public_message)


class InvalidToken(AuthError):
    """Raised when a presented bearer token is refused; ``reason`` is a :class:`TokenReason`."""

    public_message = "令牌无效或已过期"

    def __init__(self, reason: TokenReason) -> None:
        self.reason = reason
        super().__init__(f"invalid token: {reason.value}")

    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` header value of a 401 answer (RFC 6750 §3), with no detail leaked."""
        return 'Bearer error="invalid_token", error_description="the access token is invalid or expired"'


class KeysUnavailable(AuthError):
    """Raised when the provider's keys cannot be fetched and none are cached: answer 503, not 401."""

    public_message = "身份认证服务暂不可用"


class ReplayRejected(AuthError):
    """Raised when a pushed (webhook) request was already accepted once within the replay window."""

    public_message = "重复的请求"

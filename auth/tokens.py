"""Bearer token validation: OIDC access tokens (JWTs) checked against the provider's JWKS.

:class:`TokenValidator` checks the signature with a key from the provider's JWKS (pinned to
asymmetric algorithms: never ``none``, never ``HS*``, and the key's type must match the header's
``alg``, so an HS256 token "signed" with the public key is refused), then ``iss``, ``aud``, ``exp``,
``nbf`` and ``iat`` with a small clock leeway. Keys come from a :class:`KeySource` — the provider's
JWKS URL over HTTP, or the embedded provider in process — through :class:`JwksCache`: cached for a
TTL, refetched at most once for an unknown ``kid``, and never more often than ``min_refetch_interval``
however many unknown kids arrive. Every refusal is an :class:`~auth.errors.InvalidToken` with a
reason code; PyJWT's messages stay in the server's log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from auth.errors import InvalidToken, KeysUnavailable, TokenReason

__all__ = ["DEFAULT_ALGORITHMS", "HttpJwksSource", "JwksCache", "KeySource", "StaticJwksSource",
           "TokenValidator", "VerificationKey"]

log = logging.getLogger(__name__)

DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_TOKEN_BYTES = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
# alg → the JWK key type (and curve) that may verify it; anything else is refused before PyJWT runs.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}


@runtime_checkable
class KeySource(Protocol):
    """Where a JWKS document comes from. The embedded :class:`~auth.idp.IdentityProvider` is one."""

    async def fetch_jwks(self) -> Mapping[str, Any]:
        """The current JWKS (``{"keys": [...]}``); raise anything on failure."""
        ...


class StaticJwksSource:
    """A fixed JWKS, or a function returning the current one (tests, in-process providers)."""

    def __init__(self, jwks: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> None:
        self._jwks = jwks

    async def fetch_jwks(self) -> Mapping[str, Any]:
        return self._jwks() if callable(self._jwks) else self._jwks


class HttpJwksSource:
    """The provider's JWKS URL, fetched with httpx (inject ``client`` or ``transport`` to control it)."""

    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self._client = client or httpx.AsyncClient(transport=transport, timeout=timeout,
                                                   follow_redirects=False)
        self._owns_client = client is None

    async def fetch_jwks(self) -> Mapping[str, Any]:
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("the JWKS is not a JSON object")
        return document

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key of the provider's JWKS, with what decides which ``alg`` it may verify."""

    kid: str
    kty: str
    crv: str | None
    alg: str | None      # the JWK's own "alg", when it names one
    key: Any             # the library's public key object


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """Usable signing keys by kid; symmetric, encryption-only and malformed keys are skipped."""
    keys: dict[str, VerificationKey] = {}
    entries = document.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid", ""), str):
            continue
        try:
            kid = entry.get("kid", "")
            keys[kid] = VerificationKey(kid, entry["kty"], entry.get("crv"), entry.get("alg"),
                                        jwt.PyJWK(entry).key)
        except PyJWTError as exc:
            log.warning("skipping a JWKS key the library cannot use: %s", exc)
    return keys


class JwksCache:
    """The provider's keys, cached for ``ttl`` seconds, with a rate-limited refetch on unknown kids.

    An unknown ``kid`` triggers one refetch (a rotated key is picked up at once), but refetches for
    unknown kids happen at most once per ``min_refetch_interval``, and a failing provider is not asked
    again sooner than that either: a flood of made-up kids never turns into a flood of JWKS requests.
    """

    def __init__(self, source: KeySource, *, ttl: float = 300.0, min_refetch_interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.fetches = 0                     # how often the source was asked (for metrics and tests)
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None     # last successful fetch
        self._attempted_at: float | None = None   # last attempt, successful or not
        self._forced_at: float | None = None      # last refetch for an unknown kid
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> VerificationKey | None:
        """The key ``kid``, or ``None`` when the provider does not know it (after at most one refetch).

        Raises:
            KeysUnavailable: the source failed and no keys were ever fetched.
        """
        if self._stale():
            await self._refresh(force=False)
        key = self._keys.get(kid)
        if key is None and self._since(self._forced_at) >= self.min_refetch_interval:
            await self._refresh(force=True)
            key = self._keys.get(kid)
        return key

    def _since(self, moment: float | None) -> float:
        return float("inf") if moment is None else self._clock() - moment

    def _stale(self) -> bool:
        return self._since(self._fetched_at) >= self.ttl

    def _failing(self) -> bool:
        """The last attempt failed a moment ago: wait before asking the provider again."""
        failed = self._attempted_at is not None and (self._fetched_at or float("-inf")) < self._attempted_at
        return failed and self._since(self._attempted_at) < self.min_refetch_interval

    async def _refresh(self, *, force: bool) -> None:
        started = self._clock()
        async with self._lock:
            # Single flight: whoever waited for the lock uses the fetch that finished meanwhile.
            if self._attempted_at is not None and self._attempted_at >= started and not self._failing():
                return
            if force:
                if self._since(self._forced_at) < self.min_refetch_interval:
                    return
                self._forced_at = self._clock()
            elif not self._stale():
                return
            if self._failing():
                if not self._keys:
                    raise KeysUnavailable()
                return  # keep serving the stale keys
            await self._fetch()

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            document = await self.source.fetch_jwks()
            keys = _parse_jwks(document)
        except Exception as exc:
            log.warning("could not fetch the identity provider's keys: %s", type(exc).__name__)
            if not self._keys:
                raise KeysUnavailable() from exc
            return
        self._keys = keys
        self._fetched_at = self._clock()


def _reason_of(exc: PyJWTError) -> TokenReason:
    match exc:
        case ExpiredSignatureError():
            return TokenReason.EXPIRED
        case ImmatureSignatureError():
            return TokenReason.NOT_YET_VALID
        case InvalidAudienceError():
            return TokenReason.AUDIENCE
        case InvalidIssuerError():
            return TokenReason.ISSUER
        case InvalidSignatureError():
            return TokenReason.SIGNATURE
        case MissingRequiredClaimError():
            return TokenReason.MISSING_CLAIM
        case InvalidAlgorithmError():
            return TokenReason.ALGORITHM
        case InvalidIssuedAtError():
            return TokenReason.INVALID_CLAIM
        case jwt.DecodeError():
            return TokenReason.MALFORMED
    return TokenReason.INVALID_CLAIM


class TokenValidator:
    """Validates bearer tokens of one issuer for one audience.

    ``keys`` is the provider's JWKS URL, a :class:`KeySource` (e.g. the embedded identity provider),
    or a ready :class:`JwksCache`. ``http_client`` / ``transport`` are used for a URL only.
    """

    def __init__(self, issuer: str, audience: str | Sequence[str], keys: str | KeySource | JwksCache, *,
                 algorithms: Sequence[str] = DEFAULT_ALGORITHMS, leeway: float = 30.0,
                 cache_ttl: float = 300.0, min_refetch_interval: float = 30.0,
                 http_client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        unsafe = [alg for alg in algorithms if alg not in _KEY_TYPES]
        if unsafe or not algorithms:
            raise ValueError(f"only asymmetric algorithms may be pinned, not {unsafe or 'nothing'}")
        self.issuer = issuer
        self.audience = audience if isinstance(audience, str) else list(audience)
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        if isinstance(keys, JwksCache):
            self.keys = keys
        else:
            source = (HttpJwksSource(keys, client=http_client, transport=transport)
                      if isinstance(keys, str) else keys)
            self.keys = JwksCache(source, ttl=cache_ttl, min_refetch_interval=min_refetch_interval)

    async def aclose(self) -> None:
        """Close the HTTP client this validator created for a JWKS URL (an injected one stays open)."""
        closer = getattr(self.keys.source, "aclose", None)
        if closer is not None:
            await closer()

    async def validate(self, token: str) -> dict[str, Any]:
        """The token's verified claims.

        Raises:
            InvalidToken: the token is refused (its ``reason`` says why).
            KeysUnavailable: the provider's keys could not be fetched at all.
        """
        header = self._header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken(TokenReason.ALGORITHM)
        kid = header.get("kid", "")
        if not isinstance(kid, str) or len(kid) > 256:
            raise InvalidToken(TokenReason.MALFORMED)
        key = await self.keys.get(kid)
        if key is None:
            raise InvalidToken(TokenReason.UNKNOWN_KEY)
        self._check_key_matches(key, alg)
        return self._decode(token, key, alg)

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise InvalidToken(TokenReason.MALFORMED)
        try:
            return jwt.get_unverified_header(token)
        except PyJWTError:
            raise InvalidToken(TokenReason.MALFORMED) from None

    @staticmethod
    def _check_key_matches(key: VerificationKey, alg: str) -> None:
        # The key decides what it can verify: an RSA key never verifies an HMAC, an ES256 JWK
        # never an RS256 token. A JWK naming its own "alg" must name this one.
        kty, crv = _KEY_TYPES[alg]
        wrong_curve = crv is not None and key.crv != crv
        if key.kty != kty or wrong_curve or key.alg not in (None, alg):
            raise InvalidToken(TokenReason.ALGORITHM)

    def _decode(self, token: str, key: VerificationKey, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway,
                                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True,
                                         "verify_exp": True, "verify_nbf": True, "verify_iat": True,
                                         "verify_aud": True, "verify_iss": True})
        except PyJWTError as exc:
            reason = _reason_of(exc)
            log.info("refused a token (%s): %s", reason.value, exc)
            raise InvalidToken(reason) from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken(TokenReason.INVALID_CLAIM)
        return claims

"""Token validation against forged tokens, with the provider's JWKS served over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.errors import InvalidToken, KeysUnavailable, TokenReason
from auth.keys import SigningKey, jwk_thumbprint
from auth.tokens import JwksCache, StaticJwksSource, TokenValidator
from tests.servers import serve

ISSUER = "https://idp.minsheng.test"
AUDIENCE = "minsheng"
Http = httpx.AsyncClient


class Provider:
    """A stand-in OIDC provider: its JWKS served over HTTP, counting fetches; can go down."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.hits = 0
        self.down = False

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"keys": [key.public_jwk() for key in self.keys]})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/jwks", self.jwks)])


Upstream = tuple[Provider, str]  # the provider and its JWKS URL


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture
async def provider(rsa_key: SigningKey, ed_key: SigningKey) -> AsyncIterator[Upstream]:
    upstream = Provider(rsa_key, ed_key)
    with serve(upstream.app()) as url:
        yield upstream, f"{url}/jwks"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One client for the validators of a test, closed after it."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user:center", "iat": now, "nbf": now,
                            "exp": now + 600, "roles": ["district"], "preferred_username": "center"}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A compact JWS built by hand, so it can be anything an attacker sends."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


async def refused(validator: TokenValidator, token: str) -> TokenReason:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert "jwt" not in str(caught.value.public_message).lower()
    return caught.value.reason


async def test_valid_tokens_of_every_pinned_algorithm(http: Http, provider: Upstream, rsa_key: SigningKey,
                                                      ed_key: SigningKey) -> None:
    _, url = provider
    validator = TokenValidator(ISSUER, AUDIENCE, url, http_client=http)
    es_key = SigningKey.generate("ES256")
    for key in (rsa_key, ed_key):
        verified = await validator.validate(key.sign(claims()))
        assert verified["sub"] == "user:center"
    with pytest.raises(InvalidToken):
        await validator.validate(es_key.sign(claims()))  # its key is not in this provider's JWKS


async def test_alg_none_is_refused(http: Http, provider: Upstream, rsa_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    for alg in ("none", "None", "NONE"):
        token = hand_made({"alg": alg, "kid": rsa_key.kid, "typ": "JWT"}, claims())
        assert await refused(validator, token) is TokenReason.ALGORITHM


async def test_hs256_signed_with_the_public_key_is_refused(http: Http, provider: Upstream,
                                                           rsa_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    pem = rsa_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = [pem, pem.strip(), json.dumps(rsa_key.public_jwk()).encode()]
    for secret in secrets:
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            token = hand_made({"alg": alg, "kid": rsa_key.kid}, claims(roles=["district"]),
                              lambda data, s=secret, d=digest: hmac.new(s, data, d).digest())
            assert await refused(validator, token) is TokenReason.ALGORITHM


def test_only_asymmetric_algorithms_can_be_pinned() -> None:
    for algorithms in (("HS256",), ("RS256", "none"), ()):
        with pytest.raises(ValueError, match="asymmetric"):
            TokenValidator(ISSUER, AUDIENCE, StaticJwksSource({"keys": []}), algorithms=algorithms)


async def test_header_alg_must_match_the_key_type(http: Http, provider: Upstream, rsa_key: SigningKey,
                                                  ed_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    # An EdDSA token naming the RSA key's kid, and an RS256 token naming the Ed25519 key's kid.
    eddsa_with_rsa_kid = jwt.encode(claims(), ed_key.private_key, algorithm="EdDSA",
                                    headers={"kid": rsa_key.kid})
    rs256_with_ed_kid = jwt.encode(claims(), rsa_key.private_key, algorithm="RS256",
                                   headers={"kid": ed_key.kid})
    assert await refused(validator, eddsa_with_rsa_kid) is TokenReason.ALGORITHM
    assert await refused(validator, rs256_with_ed_kid) is TokenReason.ALGORITHM


async def test_tampered_claims_fail_the_signature(http: Http, provider: Upstream,
                                                  rsa_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    header, _, signature = rsa_key.sign(claims(roles=["resident"])).split(".")
    forged_payload = b64(json.dumps(claims(roles=["district"])).encode())
    assert await refused(validator, f"{header}.{forged_payload}.{signature}") is TokenReason.SIGNATURE
    head, payload, sig = rsa_key.sign(claims()).split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert await refused(validator, f"{head}.{payload}.{flipped}") is TokenReason.SIGNATURE


@pytest.mark.parametrize(("changes", "reason"), [
    ({"exp": int(time.time()) - 120}, TokenReason.EXPIRED),
    ({"nbf": int(time.time()) + 300}, TokenReason.NOT_YET_VALID),
    ({"iat": int(time.time()) + 300}, TokenReason.NOT_YET_VALID),
    ({"aud": "another-service"}, TokenReason.AUDIENCE),
    ({"aud": ["another-service", "and-another"]}, TokenReason.AUDIENCE),
    ({"iss": "https://evil.example"}, TokenReason.ISSUER),
    ({"iss": ISSUER + "/"}, TokenReason.ISSUER),
    ({"exp": None}, TokenReason.MISSING_CLAIM),
    ({"sub": None}, TokenReason.MISSING_CLAIM),
    ({"iat": None}, TokenReason.MISSING_CLAIM),
    ({"aud": None}, TokenReason.MISSING_CLAIM),
    ({"iat": "yesterday"}, TokenReason.INVALID_CLAIM),
])
async def test_claims_are_checked(http: Http, provider: Upstream, rsa_key: SigningKey,
                                  changes: dict[str, Any], reason: TokenReason) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    assert await refused(validator, rsa_key.sign(claims(**changes))) is reason


async def test_small_clock_skew_is_tolerated(http: Http, provider: Upstream, rsa_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], leeway=30, http_client=http)
    now = int(time.time())
    await validator.validate(rsa_key.sign(claims(exp=now - 10)))
    await validator.validate(rsa_key.sign(claims(nbf=now + 10, iat=now + 10)))
    await validator.validate(rsa_key.sign(claims(aud=["other", AUDIENCE])))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "x" * 9000, "eyJhbGciOiJSUzI1NiJ9.e30.",
                                   "....", "Bearer abc.def.ghi"])
async def test_malformed_tokens(http: Http, provider: Upstream, token: str) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    assert await refused(validator, token) in {TokenReason.MALFORMED, TokenReason.UNKNOWN_KEY}


async def test_another_providers_key_is_refused(http: Http, provider: Upstream, rsa_key: SigningKey) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, provider[1], http_client=http)
    stranger = SigningKey.generate("RS256")
    # Claiming our key's kid: the signature does not verify with our key.
    impostor = jwt.encode(claims(), stranger.private_key, algorithm="RS256", headers={"kid": rsa_key.kid})
    assert await refused(validator, impostor) is TokenReason.SIGNATURE
    # With its own kid: not in our provider's JWKS.
    assert await refused(validator, stranger.sign(claims())) is TokenReason.UNKNOWN_KEY


async def test_unknown_kid_gets_one_refetch_then_is_refused(http: Http, provider: Upstream,
                                                            rsa_key: SigningKey) -> None:
    upstream, url = provider
    validator = TokenValidator(ISSUER, AUDIENCE, url, min_refetch_interval=60, http_client=http)
    await validator.validate(rsa_key.sign(claims()))
    assert upstream.hits == 1
    await validator.validate(rsa_key.sign(claims()))
    assert upstream.hits == 1  # cached
    stranger = SigningKey.generate("EdDSA")
    assert await refused(validator, stranger.sign(claims())) is TokenReason.UNKNOWN_KEY
    assert upstream.hits == 2  # exactly one refetch
    # A flood of unknown kids does not hammer the provider: the refetch is rate-limited.
    for i in range(20):
        other = jwt.encode(claims(), stranger.private_key, algorithm="EdDSA", headers={"kid": f"k{i}"})
        assert await refused(validator, other) is TokenReason.UNKNOWN_KEY
    assert upstream.hits == 2


async def test_key_rotation_is_picked_up_by_the_refetch(http: Http, provider: Upstream,
                                                        rsa_key: SigningKey) -> None:
    upstream, url = provider
    validator = TokenValidator(ISSUER, AUDIENCE, url, min_refetch_interval=0, http_client=http)
    await validator.validate(rsa_key.sign(claims()))
    rotated = SigningKey.generate("ES256")
    upstream.keys.append(rotated)
    assert (await validator.validate(rotated.sign(claims())))["sub"] == "user:center"
    assert upstream.hits == 2


async def test_provider_down_without_cached_keys_is_unavailable(http: Http, provider: Upstream,
                                                                rsa_key: SigningKey) -> None:
    upstream, url = provider
    upstream.down = True
    validator = TokenValidator(ISSUER, AUDIENCE, url, min_refetch_interval=60, http_client=http)
    with pytest.raises(KeysUnavailable):
        await validator.validate(rsa_key.sign(claims()))
    with pytest.raises(KeysUnavailable):
        await validator.validate(rsa_key.sign(claims()))
    assert upstream.hits == 1  # not retried on every request


async def test_cached_keys_outlive_a_provider_outage(rsa_key: SigningKey) -> None:
    now = [1000.0]
    calls: list[int] = []

    def jwks() -> dict[str, Any]:
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("provider down")
        return {"keys": [rsa_key.public_jwk()]}

    cache = JwksCache(StaticJwksSource(jwks), ttl=10, min_refetch_interval=5, clock=lambda: now[0])
    validator = TokenValidator(ISSUER, AUDIENCE, cache)
    await validator.validate(rsa_key.sign(claims()))
    now[0] += 11  # past the TTL: the refresh fails, the stale keys keep working
    await validator.validate(rsa_key.sign(claims()))
    await validator.validate(rsa_key.sign(claims()))
    assert len(calls) == 2


async def test_jwks_skips_symmetric_and_encryption_keys(rsa_key: SigningKey) -> None:
    oct_key = {"kty": "oct", "kid": "shared", "k": b64(b"secret-secret-secret-secret-32b!")}
    enc_key = {**rsa_key.public_jwk(), "kid": "enc", "use": "enc"}
    cache = JwksCache(StaticJwksSource({"keys": [oct_key, enc_key, {"kty": "RSA"}, "junk"]}))
    assert await cache.get("shared") is None
    assert await cache.get("enc") is None


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 §3.1's example key and thumbprint.
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE"
                "CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY3"
                "68QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"
                "d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

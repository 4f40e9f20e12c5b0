"""Signing keys of the embedded identity provider and the JWK forms of public keys.

A :class:`SigningKey` is an RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA) private key; its ``kid``
is the RFC 7638 JWK thumbprint of its public half, so the same key always gets the same id.
Keys are generated at start or loaded from a PEM file the caller names; behind several gateway
replicas, :func:`shared_signing_key` lets them agree on one generated key through Redis.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SIGNING_ALGORITHMS", "SigningKey", "jwk_thumbprint", "shared_signing_key"]

SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
SHARED_KEY_NAME = "minsheng:auth:idp:signing-key"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

# RFC 7638 §3.2: the members that make up each key type's thumbprint, in lexicographic order.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _algorithm_of(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError("RSA signing keys must have at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("EC signing keys must be on P-256 (ES256)")
        return "ES256"
    return "EdDSA"


def _public_jwk(key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {name: value for name, value in jwk.items() if name in _THUMBPRINT_MEMBERS[jwk["kty"]]}


class SigningKey:
    """A private signing key with its algorithm, thumbprint ``kid`` and public JWK."""

    def __init__(self, private_key: PrivateKey) -> None:
        self.private_key = private_key
        self.algorithm = _algorithm_of(private_key)
        jwk = _public_jwk(private_key)
        self.kid = jwk_thumbprint(jwk)
        self._public_jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    @classmethod
    def generate(cls, algorithm: str = "RS256") -> SigningKey:
        """A fresh key for ``algorithm`` (``RS256``: RSA 2048, ``ES256``: P-256, ``EdDSA``: Ed25519)."""
        if algorithm == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if algorithm == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if algorithm == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise ValueError(f"unsupported signing algorithm {algorithm!r}; use one of {SIGNING_ALGORITHMS}")

    @classmethod
    def from_pem(cls, pem: bytes | str | Path, password: bytes | None = None) -> SigningKey:
        """Load a PKCS#8 / traditional PEM private key, given as bytes or as a file path."""
        data = Path(pem).read_bytes() if isinstance(pem, Path) else pem
        data = data.encode() if isinstance(data, str) else data
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("the PEM key must be RSA, EC P-256 or Ed25519")
        return cls(key)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (for sharing between replicas)."""
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``use: sig`` and ``alg``."""
        return dict(self._public_jwk)

    def sign(self, claims: dict[str, Any], *, typ: str = "at+jwt") -> str:
        """A compact JWS of ``claims`` signed with this key (``typ`` per RFC 9068 for access tokens)."""
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": typ})


async def shared_signing_key(redis: Redis, algorithm: str = "RS256", *,
                             name: str = SHARED_KEY_NAME) -> SigningKey:
    """One generated key for every replica on this Redis: the first to start stores its key, the rest load it.

    Meant for the embedded demo provider; in production load a key from a PEM file (or use an
    external OIDC provider) instead of keeping a private key in Redis.
    """
    candidate = SigningKey.generate(algorithm)
    await redis.set(name, candidate.to_pem(), nx=True)
    stored = await redis.get(name)
    if stored is None:  # evicted between the two calls: use ours and try to store it again
        await redis.set(name, candidate.to_pem())
        return candidate
    return SigningKey.from_pem(stored if isinstance(stored, bytes | str) else bytes(stored))

"""HMAC request signing for the court's mediation platform, as an ``httpx.Auth`` flow.

The canonical string is six lines joined by ``\\n``: the method; the path percent-decoded and re-encoded
(UTF-8, everything but ``A–Z a–z 0–9 - . _ ~ /`` as upper-case ``%XX``); the decoded query parameters
encoded the same way (``/`` too), sorted by (name, value), joined ``name=value`` with ``&``; the
``X-Timestamp`` (unix milliseconds); the ``X-Nonce``; the hex SHA-256 of the body bytes. The signature is
base64(HMAC-SHA256(app secret, canonical string)). Re-encoding both sides from the decoded text means a
client and a server that percent-encode differently (``(`` or ``%28``, ``%e7`` or ``%E7``) still agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator, Iterable
from urllib.parse import quote, unquote

import httpx

__all__ = ["HmacSigner", "canonical_request"]


def _encode(text: str, safe: str) -> str:
    return quote(text, safe=safe)  # quote keeps A-Z a-z 0-9 - . _ ~ and writes upper-case hex


def canonical_request(request: httpx.Request, timestamp: str, nonce: str) -> str:
    """The platform's canonical string of ``request`` (whose body must have been read)."""
    raw_path = request.url.raw_path.decode("ascii").partition("?")[0]
    query = "&".join(f"{_encode(name, '')}={_encode(value, '')}"
                     for name, value in sorted(request.url.params.multi_items()))
    return "\n".join((request.method.upper(), _encode(unquote(raw_path), "/"), query, timestamp, nonce,
                      hashlib.sha256(request.content).hexdigest()))


class HmacSigner(httpx.Auth):
    """Signs every request with the app key and secret (headers ``X-App-Key``, ``X-Timestamp``,
    ``X-Nonce``, ``X-Signature``). Each send — a retry too — gets a fresh timestamp and nonce.

    Args:
        app_key, app_secret: the platform's credentials for the gateway.
        clock: unix time in seconds (tests pass their own to sign stale requests).
        nonces: where nonces come from (default: 128 random bits, hex).
    """

    requires_request_body = True

    def __init__(self, app_key: str, app_secret: str, *, clock: Callable[[], float] = time.time,
                 nonces: Iterable[str] | None = None) -> None:
        self.app_key = app_key
        self._secret = app_secret.encode()
        self.clock = clock
        self._nonces = iter(nonces) if nonces is not None else None

    def _nonce(self) -> str:
        return next(self._nonces) if self._nonces is not None else secrets.token_hex(16)

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Set the four signing headers on ``request`` (its body already read)."""
        timestamp, nonce = str(int(self.clock() * 1000)), self._nonce()
        digest = hmac.new(self._secret, canonical_request(request, timestamp, nonce).encode(), hashlib.sha256)
        request.headers.update({"X-App-Key": self.app_key, "X-Timestamp": timestamp, "X-Nonce": nonce,
                                "X-Signature": base64.b64encode(digest.digest()).decode()})
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)

"""Upstream authentication as ``httpx.Auth`` flows: API key, bearer token, OAuth2 client credentials, HMAC.

Connectors set one of these as their client's ``auth`` (see :meth:`connectors.Connector.build_client`);
the declarative connector picks one by its spec's ``auth.type``. Each flow is a plain class an
integrator can use as is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from connectors.errors import AuthenticationFailed, UpstreamRejected
from connectors.http import raise_for_outcome

__all__ = ["ApiKey", "BearerToken", "ClientCredentials", "HmacSigner"]


class ClientCredentials(httpx.Auth):
    """Bearer tokens from an OAuth2 token endpoint (``grant_type=client_credentials``).

    The token is cached until ``leeway`` seconds before it expires (at most a fifth of its
    lifetime, so very short-lived tokens are still used), then fetched anew before the request.
    A 401 answer (the server forgot or expired the token early) fetches a new token once and
    resends the request; a second 401 is the caller's :class:`AuthenticationFailed`.

    Args:
        token_url: absolute URL of the token endpoint.
        client_id, client_secret: the service's client credentials (sent as form fields).
        leeway: seconds before expiry to refresh.
        clock: monotonic clock (tests may pass their own).
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, leeway: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.leeway = leeway
        self.clock = clock
        self.fetched = 0  # tokens fetched so far (for observability and tests)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    def _valid(self) -> bool:
        return self._token is not None and self.clock() < self._refresh_at

    def _token_request(self) -> httpx.Request:
        return httpx.Request("POST", self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self.client_secret}, headers={"Accept": "application/json"})

    async def _store(self, response: httpx.Response) -> None:
        await response.aread()
        if response.status_code in (400, 401):
            raise AuthenticationFailed(f"token endpoint refused the client credentials "
                                       f"({response.status_code})", status=response.status_code)
        raise_for_outcome(response)
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamRejected("token endpoint answered without a usable access_token") from exc
        self._token = token
        self._refresh_at = self.clock() + lifetime - min(self.leeway, lifetime / 5)
        self.fetched += 1

    def _authorise(self, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._valid():
            async with self._lock:  # one fetch for many concurrent requests
                if not self._valid():
                    await self._store((yield self._token_request()))
        used = self._token
        response = yield self._authorise(request)
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token == used:  # not refreshed meanwhile by a concurrent request
                await self._store((yield self._token_request()))
        yield self._authorise(request)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentials is for httpx.AsyncClient")


class ApiKey(httpx.Auth):
    """A static API key, in a header (default ``X-Api-Key``) or a query parameter.

    Args:
        key: the key itself.
        name: the header or query parameter name.
        location: ``"header"`` or ``"query"``.
    """

    def __init__(self, key: str, *, name: str = "X-Api-Key", location: str = "header") -> None:
        if location not in ("header", "query"):
            raise ValueError("location must be 'header' or 'query'")
        self.key, self.name, self.location = key, name, location

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.location == "query":
            request.url = request.url.copy_merge_params({self.name: self.key})
        else:
            request.headers[self.name] = self.key
        yield request


class BearerToken(httpx.Auth):
    """A static bearer token in ``Authorization: Bearer …``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class HmacSigner(httpx.Auth):
    """Signs every request: base64 or hex HMAC-SHA256 over a message built from ``template``.

    The template may use ``{method}``, ``{path}`` (with the query string), ``{timestamp}`` (unix
    seconds), ``{nonce}`` and ``{body_sha256}`` (hex digest of the body). Each send gets a fresh
    timestamp and nonce.

    Args:
        key_id: sent in ``key_header`` (omitted when empty).
        secret: the shared secret.
        template: the message layout, default ``"{method}\\n{path}\\n{timestamp}\\n{nonce}\\n{body_sha256}"``.
        encoding: ``"hex"`` or ``"base64"`` for the signature header.
    """

    requires_request_body = True

    def __init__(self, key_id: str, secret: str, *,
                 template: str = "{method}\n{path}\n{timestamp}\n{nonce}\n{body_sha256}",
                 key_header: str = "X-Key-Id", timestamp_header: str = "X-Timestamp",
                 nonce_header: str = "X-Nonce", signature_header: str = "X-Signature",
                 encoding: str = "hex", clock: Callable[[], float] = time.time) -> None:
        self.key_id, self._secret, self.template, self.encoding = key_id, secret.encode(), template, encoding
        self.headers = (key_header, timestamp_header, nonce_header, signature_header)
        self.clock = clock

    def signature(self, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
        """The signature of one request, as the channel computes it."""
        message = self.template.format(method=method.upper(), path=path, timestamp=timestamp, nonce=nonce,
                                       body_sha256=hashlib.sha256(body).hexdigest())
        digest = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode() if self.encoding == "base64" else digest.hex()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(12)
        path = request.url.raw_path.decode("ascii")
        key_header, timestamp_header, nonce_header, signature_header = self.headers
        if self.key_id:
            request.headers[key_header] = self.key_id
        request.headers[timestamp_header] = timestamp
        request.headers[nonce_header] = nonce
        request.headers[signature_header] = self.signature(request.method, path, timestamp, nonce,
                                                           request.content)
        yield request

"""OAuth2 client credentials as an ``httpx.Auth`` flow: fetch, cache, refresh early, refresh once on 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from connectors.errors import AuthenticationFailed, UpstreamRejected
from connectors.http import raise_for_outcome

__all__ = ["ClientCredentials"]


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

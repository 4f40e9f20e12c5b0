"""The hotline's access control and push: OAuth2 client-credentials tokens, a per-token request
budget, and signed webhooks sent from a background task."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any

import httpx

from sandbox.hotline12345.orders import WorkOrderBook, render

log = logging.getLogger(__name__)

MAX_TOKENS = 10_000  # issued tokens remembered (so an expired one is told apart from a forged one)


class TokenIssuer:
    """Issues opaque bearer tokens valid for ``ttl`` seconds."""

    def __init__(self, client_id: str, client_secret: str, ttl: float) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.issued = 0
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        return (hmac.compare_digest(client_id.encode(), self.client_id.encode())
                and hmac.compare_digest(client_secret.encode(), self.client_secret.encode()))

    def issue(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        self._expiry[token] = time.monotonic() + self.ttl
        while len(self._expiry) > MAX_TOKENS:
            self._expiry.popitem(last=False)
        self.issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": max(1, round(self.ttl))}

    def check(self, token: str) -> str | None:
        """``None`` when valid, else the error code ``TOKEN_EXPIRED`` or ``TOKEN_INVALID``."""
        expiry = self._expiry.get(token)
        if expiry is None:
            return "TOKEN_INVALID"
        return "TOKEN_EXPIRED" if time.monotonic() >= expiry else None

    def revoke_all(self) -> None:
        """Forget every token (the vendor restarted its auth server); clients must fetch anew."""
        self._expiry.clear()


class RateBudget:
    """At most ``per_second`` requests per token in each wall-clock second (0 = unlimited)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._windows: dict[str, tuple[int, int]] = {}

    def spend(self, token: str) -> bool:
        """Count one request; ``False`` when the budget of this second is used up."""
        if self.per_second <= 0:
            return True
        second = int(time.monotonic())
        window, used = self._windows.get(token, (second, 0))
        if window != second:
            window, used = second, 0
        if len(self._windows) > MAX_TOKENS:
            self._windows.clear()
        self._windows[token] = (window, used + 1)
        return used < self.per_second


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``{timestamp}.{nonce}.{body}``, as the hotline signs its webhooks."""
    message = f"{timestamp}.{nonce}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class WebhookPusher:
    """Pushes new and changed work orders to ``url``; failures are dropped (clients also pull)."""

    def __init__(self, book: WorkOrderBook, url: str, secret: str, *, interval: float = 0.2) -> None:
        self.book = book
        self.url = url
        self.secret = secret
        self.interval = interval
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start pushing (idempotent); what is already there when it starts is not pushed."""
        if self._task is not None:
            return
        self.book.notice()
        self.book.changed.clear()
        self.book.track_changes = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hotline12345-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                await asyncio.sleep(self.interval)
                self.book.notice()
                while self.book.changed:
                    gdbh = next(iter(self.book.changed))
                    del self.book.changed[gdbh]
                    await self._push(client, gdbh)

    async def _push(self, client: httpx.AsyncClient, gdbh: str) -> None:
        found = self.book.find(gdbh)
        if found is None:
            return
        event = {"event": "workorder.updated", "data": render(*found)}
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_hex(12)
        headers = {"Content-Type": "application/json; charset=utf-8", "X-12345-Timestamp": timestamp,
                   "X-12345-Nonce": nonce, "X-12345-Signature": sign(self.secret, timestamp, nonce, body)}
        try:
            answer = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.failed += 1
            log.debug("webhook to %s failed: %s", self.url, exc)
            return
        if answer.is_success:
            self.sent += 1
        else:
            self.failed += 1

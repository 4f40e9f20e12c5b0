"""The 12345 hotline's webhook signature: HMAC-SHA256 over ``{timestamp}.{nonce}.{body}``, hex.

A request is accepted when its signature matches (compared in constant time), its timestamp is
within ``tolerance`` seconds of now, and its nonce has not been seen within that window.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime

from connectors.errors import WebhookRejected

__all__ = ["NONCE_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookVerifier", "sign_webhook"]

TIMESTAMP_HEADER = "X-12345-Timestamp"
NONCE_HEADER = "X-12345-Nonce"
SIGNATURE_HEADER = "X-12345-Signature"


def sign_webhook(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex signature the hotline sends in ``X-12345-Signature`` for ``body``."""
    message = f"{timestamp}.{nonce}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class WebhookVerifier:
    """Checks signature, freshness and replay of pushed requests.

    Nonces are remembered per process for the tolerance window (bounded by ``max_nonces``; the
    oldest are forgotten first). Behind several gateway replicas a replay could reach another
    replica; ingest is idempotent, so that costs a duplicate write, never a wrong one.
    """

    def __init__(self, secret: str, *, tolerance: float = 300.0, max_nonces: int = 50_000) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.max_nonces = max_nonces
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce → its timestamp, oldest first

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise :class:`WebhookRejected` unless the request checks out; then remember its nonce."""
        lower = {name.lower(): value for name, value in headers.items()}
        timestamp = lower.get(TIMESTAMP_HEADER.lower(), "").strip()
        nonce = lower.get(NONCE_HEADER.lower(), "").strip()
        signature = lower.get(SIGNATURE_HEADER.lower(), "").strip().lower()
        if not (timestamp and nonce and signature):
            raise WebhookRejected("missing X-12345-Timestamp, X-12345-Nonce or X-12345-Signature")
        try:
            sent_at = float(int(timestamp))
        except ValueError:
            raise WebhookRejected("X-12345-Timestamp is not unix seconds") from None
        expected = sign_webhook(self.secret, timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise WebhookRejected("signature does not match")
        current = now.timestamp()
        if abs(current - sent_at) > self.tolerance:
            raise WebhookRejected(f"timestamp is more than {self.tolerance:.0f} s away from now")
        self._forget_before(current - self.tolerance)
        if nonce in self._nonces:
            raise WebhookRejected("nonce already used (replay)")
        self._nonces[nonce] = sent_at
        while len(self._nonces) > self.max_nonces:
            self._nonces.popitem(last=False)

    def _forget_before(self, cutoff: float) -> None:
        # Older requests fail the timestamp check anyway; insertion order is close to time order.
        while self._nonces:
            nonce, sent_at = next(iter(self._nonces.items()))
            if sent_at >= cutoff:
                break
            del self._nonces[nonce]

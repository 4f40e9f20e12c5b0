"""HMAC request signing as the court's mediation platform checks it.

Every request carries ``X-App-Key``, ``X-Timestamp`` (unix milliseconds), ``X-Nonce`` (random, once per
request) and ``X-Signature`` = base64(HMAC-SHA256(app secret, canonical string)), where the canonical
string is six lines joined by ``\\n``::

    METHOD            upper case, e.g. GET
    PATH              the request path percent-decoded, then re-encoded as UTF-8 with every character
                      except A–Z a–z 0–9 - . _ ~ and / percent-encoded (upper-case hex)
    SORTED-QUERY      the query parameters, decoded, each name and value encoded as PATH's characters
                      (but "/" encoded too), sorted by (name, value), joined as name=value with &
    X-Timestamp       as sent
    X-Nonce           as sent
    SHA256(body)      lower-case hex digest of the body bytes exactly as sent (of b"" when empty)

Refusals (HTTP 401, ``{"errcode", "errmsg"}``): 40101 missing headers, unknown app key or a wrong
signature; 40102 a timestamp more than 300 s away from the platform's clock; 40103 a nonce seen before
(nonces are remembered for twice the allowed skew, so a replay is refused until its timestamp is stale).
This module is written independently of the connector's signer, so the tests check one against the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, unquote

__all__ = ["MAX_SKEW_MS", "SignatureGate", "canonical_path", "canonical_query", "canonical_string"]

MAX_SKEW_MS = 300_000
BAD_SIGNATURE, STALE_TIMESTAMP, REPLAYED_NONCE = 40101, 40102, 40103


def canonical_path(raw_path: str) -> str:
    return quote(unquote(raw_path), safe="/")


def canonical_query(items: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in sorted(items))


def canonical_string(method: str, raw_path: str, query: Iterable[tuple[str, str]], timestamp: str,
                     nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), canonical_path(raw_path), canonical_query(query), timestamp, nonce,
                      hashlib.sha256(body).hexdigest()))


class SignatureGate:
    """Checks signed requests against the registered app keys and remembers nonces.

    Args:
        secrets: app key → app secret.
        clock: the platform's clock in unix milliseconds (tests may pass their own).
    """

    def __init__(self, secrets: Mapping[str, str], *, clock: Callable[[], int] | None = None) -> None:
        self.secrets = dict(secrets)
        self.clock = clock or (lambda: int(time.time() * 1000))
        # (app key, nonce) → when it may be forgotten; insertion order is expiry order
        self._nonces: OrderedDict[tuple[str, str], int] = OrderedDict()

    def check(self, method: str, raw_path: str, query: Iterable[tuple[str, str]],
              headers: Mapping[str, str], body: bytes) -> tuple[int, str] | None:
        """``None`` when the request is properly signed, else ``(errcode, errmsg)``."""
        app_key, timestamp = headers.get("x-app-key", ""), headers.get("x-timestamp", "")
        nonce, signature = headers.get("x-nonce", ""), headers.get("x-signature", "")
        if not (app_key and timestamp and nonce and signature):
            return BAD_SIGNATURE, "缺少签名请求头（X-App-Key/X-Timestamp/X-Nonce/X-Signature）"
        secret = self.secrets.get(app_key)
        if secret is None:
            return BAD_SIGNATURE, "AppKey无效"
        now = self.clock()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_MS:
            return STALE_TIMESTAMP, "时间戳无效或与服务器时间相差超过300秒"
        expected = base64.b64encode(hmac.new(secret.encode(), canonical_string(
            method, raw_path, query, timestamp, nonce, body).encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return BAD_SIGNATURE, "签名校验失败"
        return self._spend(app_key, nonce, now)

    def _spend(self, app_key: str, nonce: str, now: int) -> tuple[int, str] | None:
        # only a properly signed request spends its nonce, so forgeries cannot block a real request
        while self._nonces and next(iter(self._nonces.values())) <= now:
            self._nonces.popitem(last=False)
        if (app_key, nonce) in self._nonces:
            return REPLAYED_NONCE, "请求重放：Nonce已使用"
        self._nonces[(app_key, nonce)] = now + 2 * MAX_SKEW_MS
        return None

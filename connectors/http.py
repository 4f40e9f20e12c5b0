"""Translating HTTP answers and transport failures into the connector error tree — once, here.

:func:`classify` turns a response into an :class:`Outcome` value and :func:`send` acts on it,
so connectors call ``await send(client, "GET", url)`` instead of scattering try/except.
"""

from __future__ import annotations

import asyncio
import enum
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.errors import AuthenticationFailed, RateLimited, UpstreamRejected, UpstreamUnavailable
from connectors.records import utc_now

__all__ = ["Outcome", "classify", "retry_after_seconds", "send"]

MAX_RETRY_AFTER = 30.0


class Outcome(enum.Enum):
    """What to do with an answer."""

    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    FAIL = "fail"


def classify(response: httpx.Response) -> Outcome:
    """Classify an HTTP answer by what the caller should do with it."""
    status = response.status_code
    if status < 400:
        return Outcome.OK
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 403):
        return Outcome.AUTH_FAILED
    if status in (408, 425) or status >= 500:
        return Outcome.RETRY
    return Outcome.FAIL


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    """Read ``Retry-After`` (seconds or an HTTP date); ``default`` when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
    except (TypeError, ValueError):
        return default


def raise_for_outcome(response: httpx.Response) -> None:
    """Raise the typed error an unsuccessful answer stands for."""
    outcome = classify(response)
    where = f"{response.request.method} {response.request.url.path}"
    if outcome is Outcome.OK:
        return
    if outcome is Outcome.RATE_LIMITED:
        raise RateLimited(f"{where}: 429", retry_after=retry_after_seconds(response))
    if outcome is Outcome.AUTH_FAILED:
        raise AuthenticationFailed(f"{where}: {response.status_code}", status=response.status_code)
    if outcome is Outcome.RETRY:
        raise UpstreamUnavailable(f"{where}: {response.status_code}", status=response.status_code)
    raise UpstreamRejected(f"{where}: {response.status_code}", status=response.status_code)


async def send(client: httpx.AsyncClient, method: str, url: str, *, rate_limit_retries: int = 2,
               **kwargs: Any) -> httpx.Response:
    """Send a request; translate transport errors and error answers into the typed errors.

    A 429 is retried up to ``rate_limit_retries`` times after its ``Retry-After`` (capped at
    30 s); then :class:`RateLimited` is raised for the caller's own backoff.
    """
    for attempt in range(rate_limit_retries + 1):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"{method} {url}: timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{method} {url}: {type(exc).__name__}") from exc
        if classify(response) is Outcome.RATE_LIMITED and attempt < rate_limit_retries:
            delay = retry_after_seconds(response)
            if delay <= MAX_RETRY_AFTER:
                await asyncio.sleep(delay)
                continue
        raise_for_outcome(response)
        return response
    raise AssertionError("unreachable")  # pragma: no cover

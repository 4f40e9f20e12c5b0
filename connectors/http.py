"""The response executor: HTTP answers and transport failures become typed errors — once, here.

:func:`classify` turns an answer into an :class:`Action` (what the caller should do with it) and
:func:`send` acts on that value, so a connector writes ``await send(client, "GET", url)`` instead of
scattering try/except over every call:

=====================  ============================================  =================================
answer                 :class:`Action`                               what :func:`send` does
=====================  ============================================  =================================
1xx–3xx                ``OK``                                        returns the response
429                    ``RATE_LIMITED``                              waits ``Retry-After`` (≤ 30 s) and
                                                                     retries; then :class:`RateLimited`
401 (refreshable)      ``REFRESH_TOKEN``                             the auth flow refreshes and resends
                                                                     once; then :class:`AuthenticationFailed`
401, 403               ``AUTH_FAILED``                               :class:`AuthenticationFailed`
404, 410 for a record  ``SKIP_RECORD``                               returns it (``skip_missing=True``):
                                                                     the record is gone, not the channel
408, 425, 5xx          ``RETRY``                                     :class:`UpstreamUnavailable`
timeout, network       ``RETRY``                                     :class:`UpstreamUnavailable`
other 4xx              ``FAIL``                                      :class:`UpstreamRejected`
=====================  ============================================  =================================
"""

from __future__ import annotations

import asyncio
import enum
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.errors import AuthenticationFailed, RateLimited, UpstreamRejected, UpstreamUnavailable
from connectors.records import utc_now

__all__ = ["MAX_RETRY_AFTER", "Action", "Outcome", "classify", "raise_for_outcome", "retry_after_seconds",
           "send"]

MAX_RETRY_AFTER = 30.0


class Action(enum.Enum):
    """What to do with an answer."""

    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (an action's name, not a secret)
    AUTH_FAILED = "auth_failed"
    SKIP_RECORD = "skip_record"
    FAIL = "fail"


Outcome = Action  # the walking skeleton's name, kept for connectors written against it


def classify(response: httpx.Response, *, refreshable: bool = False, record: bool = False) -> Action:
    """Classify an HTTP answer by what the caller should do with it.

    Args:
        response: the answer.
        refreshable: the client's auth can fetch a new token (a 401 then means "refresh and resend").
        record: the request addressed one record (a 404 then means "skip that record").

    Returns:
        The :class:`Action` for the answer.
    """
    status = response.status_code
    if status < 400:
        return Action.OK
    if status == 429:
        return Action.RATE_LIMITED
    if status == 401 and refreshable:
        return Action.REFRESH_TOKEN
    if status in (401, 403):
        return Action.AUTH_FAILED
    if status in (404, 410) and record:
        return Action.SKIP_RECORD
    if status in (408, 425) or status >= 500:
        return Action.RETRY
    return Action.FAIL


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


def raise_for_outcome(response: httpx.Response, *, record: bool = False) -> None:
    """Raise the typed error an unsuccessful answer stands for (nothing for OK and SKIP_RECORD).

    Raises:
        RateLimited: 429, with ``retry_after`` from the answer.
        AuthenticationFailed: 401 or 403.
        UpstreamUnavailable: 408, 425 or 5xx.
        UpstreamRejected: any other 4xx.
    """
    action = classify(response, record=record)
    where = f"{response.request.method} {response.request.url.path}"
    if action in (Action.OK, Action.SKIP_RECORD):
        return
    if action is Action.RATE_LIMITED:
        raise RateLimited(f"{where}: 429", retry_after=retry_after_seconds(response))
    if action is Action.AUTH_FAILED:
        raise AuthenticationFailed(f"{where}: {response.status_code} (check the channel's credentials)",
                                   status=response.status_code)
    if action is Action.RETRY:
        raise UpstreamUnavailable(f"{where}: {response.status_code}", status=response.status_code)
    raise UpstreamRejected(f"{where}: {response.status_code}", status=response.status_code)


async def send(client: httpx.AsyncClient, method: str, url: str, *, rate_limit_retries: int = 2,
               skip_missing: bool = False, **kwargs: Any) -> httpx.Response:
    """Send a request and act on its :class:`Action`.

    Args:
        client: the connector's client (its ``auth`` flow handles REFRESH_TOKEN).
        method, url: the request; ``kwargs`` go to ``client.request``.
        rate_limit_retries: how often a 429 is retried after its ``Retry-After`` (≤ 30 s) before
            :class:`RateLimited` is raised for the caller's own backoff.
        skip_missing: the request addresses one record: a 404/410 answer is returned (SKIP_RECORD)
            instead of raised.

    Returns:
        The answer (OK, or SKIP_RECORD with ``skip_missing``).

    Raises:
        UpstreamUnavailable: timeouts, network errors, 408/425/5xx.
        RateLimited: 429 after the retries.
        AuthenticationFailed: 401/403.
        UpstreamRejected: other 4xx.
    """
    for attempt in range(rate_limit_retries + 1):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"{method} {url}: timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{method} {url}: {type(exc).__name__}") from exc
        if classify(response) is Action.RATE_LIMITED and attempt < rate_limit_retries:
            delay = retry_after_seconds(response)
            if delay <= MAX_RETRY_AFTER:
                await asyncio.sleep(delay)
                continue
        raise_for_outcome(response, record=skip_missing)
        return response
    raise AssertionError("unreachable")  # pragma: no cover

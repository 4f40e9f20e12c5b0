"""GeoReport v2 on the wire: reading JSON or XML answers into rows, and GeoReport errors into typed errors.

XML is parsed with defusedxml with DTDs forbidden (entity expansion and external entities are refused,
never expanded). Error answers (``[{"code": 400, "description": "…"}]`` or ``<errors><error>…``) are
turned into typed errors by an httpx response hook, so :func:`connectors.http.send` keeps handling
transport errors, 429s and 5xx, and the description reaches the operator.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
from defusedxml import DefusedXmlException

from connectors.errors import AuthenticationFailed, UpstreamRejected

__all__ = ["GeoReportError", "parse_rows", "translate_errors"]


class GeoReportError(UpstreamRejected):
    """Raised when the endpoint answers a GeoReport error list; ``errors`` holds its (code, description)s."""

    def __init__(self, message: str, *, status: int, errors: list[tuple[int | None, str]]) -> None:
        self.errors = errors
        super().__init__(message, status=status)


def _parse_xml(content: bytes) -> ET.Element:
    try:
        return SafeET.fromstring(content, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise UpstreamRejected(f"answer refused: it declares a DTD or entities ({type(exc).__name__}); "
                               "entity expansion and external entities are not allowed") from None
    except ET.ParseError as exc:
        raise UpstreamRejected(f"answer is not well-formed XML: {exc}") from None


def _xml_row(element: ET.Element) -> dict[str, Any]:
    return {child.tag: (child.text or "").strip() or None for child in element}


def parse_rows(response: httpx.Response, fmt: str) -> list[Any]:
    """The rows of a GeoReport list answer (requests, services, updates …), as the endpoint sent them.

    A JSON row that is not an object is passed on as it is, for the caller to reject as a bad record.

    Raises:
        UpstreamRejected: the answer is not a JSON array / an XML document of rows, or is unsafe XML.
    """
    where = f"{response.request.method} {response.request.url.path}"
    if fmt == "xml":
        return [_xml_row(row) for row in _parse_xml(response.content)]
    try:
        body = json.loads(response.content)
    except ValueError:
        raise UpstreamRejected(f"{where}: answer is not JSON") from None
    if not isinstance(body, list):
        raise UpstreamRejected(f"{where}: answer is not a JSON array")
    return body


def _errors(response: httpx.Response) -> list[tuple[int | None, str]] | None:
    """The GeoReport error list of an answer, or ``None`` when it has none."""
    kind = response.headers.get("content-type", "").lower()
    if "xml" in kind:
        root = _parse_xml(response.content)  # hostile XML is refused here too
        rows = [_xml_row(e) for e in root] if root.tag == "errors" else []
    else:
        try:
            body = json.loads(response.content)
        except ValueError:
            return None
        rows = [row for row in body if isinstance(row, dict)] if isinstance(body, list) else []
    found = [(_code(row.get("code")), str(row.get("description") or "")) for row in rows]
    return found or None


def _code(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


async def translate_errors(response: httpx.Response) -> None:
    """httpx response hook: a 4xx GeoReport error list raises a typed error carrying its descriptions.

    A 4xx without one (a route the endpoint does not have, a proxy's page) is left to
    :func:`connectors.http.send`; 429 is left to it too, for its Retry-After handling.
    """
    if not 400 <= response.status_code < 500 or response.status_code == 429:
        return
    await response.aread()
    errors = _errors(response)
    if errors is None:
        return
    where = f"{response.request.method} {response.request.url.path}"
    message = f"{where}: {response.status_code} " + "; ".join(d for _, d in errors)[:300]
    if response.status_code in (401, 403):
        raise AuthenticationFailed(message, status=response.status_code)
    raise GeoReportError(message, status=response.status_code, errors=errors)

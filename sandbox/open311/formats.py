"""GeoReport v2's two formats: JSON arrays and XML documents, for answers and errors alike.

XML follows the spec's shapes: ``<services><service>…``, ``<service_requests><request>…``,
``<service_definition>…<attributes><attribute>…<values><value>…``, ``<errors><error><code>…``; an empty
value is an empty element, booleans are ``true``/``false``, and the document starts with the XML
declaration with ``encoding="utf-8"`` as the spec requires.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from starlette.responses import JSONResponse, Response

__all__ = ["FORMATS", "answer", "error"]

FORMATS = ("json", "xml")
XML_TYPE = "text/xml; charset=utf-8"
_SINGULAR = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(element, key), inner)
    elif isinstance(value, list):
        for inner in value:
            _fill(ET.SubElement(element, _SINGULAR.get(element.tag, "item")), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(root: str, item: str | None, payload: Any) -> bytes:
    """``payload`` (a list of rows under ``item`` elements, or one dict) as an XML document."""
    element = ET.Element(root)
    if item is None:
        _fill(element, payload)
    else:
        for row in payload:
            _fill(ET.SubElement(element, item), row)
    return bytes(ET.tostring(element, encoding="utf-8", xml_declaration=True))


def answer(fmt: str, root: str, item: str | None, payload: Any, status: int = 200) -> Response:
    """``payload`` in ``fmt``; for XML wrapped in ``root`` (and each row in ``item``)."""
    if fmt == "xml":
        return Response(to_xml(root, item, payload), status_code=status, media_type=XML_TYPE)
    return JSONResponse(payload, status_code=status)


def error(fmt: str, status: int, description: str) -> Response:
    """A GeoReport error: ``[{"code": status, "description": …}]`` or ``<errors><error>…``."""
    return answer(fmt if fmt in FORMATS else "json", "errors", "error",
                  [{"code": status, "description": description}], status)

"""SOAP 1.1 on the petition service's wire: namespaces, reading a request envelope, writing answers, faults.

Requests are parsed with defusedxml and any DTD is refused (SOAP 1.1 messages must not carry one), so a
hostile request can neither expand entities nor make the service fetch anything. Answers are built as
``ElementTree`` elements, so text is always escaped by the serializer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from starlette.responses import Response

__all__ = [
    "CONTENT_TYPE",
    "SOAP12_NS",
    "SOAP_NS",
    "WSSE_NS",
    "WSU_NS",
    "XF_NS",
    "SoapFault",
    "answer",
    "child_text",
    "fault_response",
    "parse_envelope",
    "sub",
    "xf",
]

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XF_NS = "urn:xinfang:petition:v1"
CONTENT_TYPE = "text/xml; charset=utf-8"
_PREFIXES = {"soap": SOAP_NS, "wsse": WSSE_NS, "wsu": WSU_NS, "xf": XF_NS}

for _prefix, _uri in _PREFIXES.items():
    # readable prefixes in what the service writes (ElementTree would write ns0, ns1 …)
    ET.register_namespace(_prefix, _uri)


class SoapFault(Exception):
    """A SOAP 1.1 fault to answer with. ``code`` is a prefixed QName: ``soap:Client``, ``soap:Server``,
    ``soap:VersionMismatch`` or ``wsse:FailedAuthentication``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def xf(name: str) -> str:
    """The Clark name of an element in the service's namespace."""
    return f"{{{XF_NS}}}{name}"


def sub(parent: Element, name: str, text: str | None = None) -> Element:
    """Append ``<xf:name>text</xf:name>`` to ``parent``."""
    element = ET.SubElement(parent, xf(name))
    if text is not None:
        element.text = text
    return element


def child_text(parent: Element, name: str) -> str | None:
    """The stripped text of ``<xf:name>`` under ``parent``; ``None`` when absent or empty."""
    element = parent.find(xf(name))
    text = None if element is None or element.text is None else element.text.strip()
    return text or None


def parse_envelope(body: bytes) -> tuple[Element | None, Element]:
    """The envelope's header (or ``None``) and the operation element in its body.

    Raises:
        SoapFault: not well-formed XML, a DTD, not a SOAP 1.1 envelope, or an empty body.
    """
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise SoapFault("soap:Client", "请求含有DTD或实体声明，拒绝处理") from None
    except ET.ParseError as exc:
        raise SoapFault("soap:Client", f"请求不是格式正确的XML：{exc}") from None
    if root.tag == f"{{{SOAP12_NS}}}Envelope":
        raise SoapFault("soap:VersionMismatch", "本服务仅支持SOAP 1.1")
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise SoapFault("soap:Client", "请求不是SOAP 1.1信封")
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    if soap_body is None or len(soap_body) == 0:
        raise SoapFault("soap:Client", "SOAP Body为空")
    return root.find(f"{{{SOAP_NS}}}Header"), soap_body[0]


def _envelope(content: Element) -> bytes:
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    ET.SubElement(envelope, f"{{{SOAP_NS}}}Body").append(content)
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=True))


def answer(content: Element) -> Response:
    """HTTP 200 with ``content`` as the body of a SOAP envelope."""
    return Response(_envelope(content), media_type=CONTENT_TYPE)


def fault_response(fault: SoapFault) -> Response:
    """HTTP 500 with a SOAP 1.1 fault, as SOAP 1.1 over HTTP requires."""
    element = ET.Element(f"{{{SOAP_NS}}}Fault")
    prefix = fault.code.partition(":")[0]
    code = ET.SubElement(element, "faultcode")
    # the code's prefix must be in scope where it is used; declare it right there
    code.set(f"xmlns:{prefix}", _PREFIXES.get(prefix, SOAP_NS))
    code.text = fault.code
    ET.SubElement(element, "faultstring").text = fault.message
    ET.SubElement(element, "faultactor").text = "/ws/PetitionService"
    return Response(_envelope(element), status_code=500, media_type=CONTENT_TYPE)

"""SOAP 1.1 for the petition connector: building envelopes, parsing answers safely, mapping faults.

Envelopes are built as ``ElementTree`` elements, so user content (a reply's text, an operator's name)
is escaped by the serializer and can never change the message's structure. Answers are parsed with
defusedxml with DTDs forbidden: entity expansion (billion laughs) and external entities (XXE) are
refused, never expanded, and such an answer is :class:`UpstreamRejected`.

Faults map by their code (SOAP 1.1 codes may carry dotted sub-codes, ``soap:Server.Database``):

=================================================  ==========================
faultcode                                          raised
=================================================  ==========================
``wsse:FailedAuthentication`` (and the other        :class:`AuthenticationFailed`
WS-Security codes)
``soap:Client``, ``VersionMismatch``,               :class:`UpstreamRejected`
``MustUnderstand``, anything unknown
``soap:Server``                                     :class:`UpstreamUnavailable`
=================================================  ==========================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import httpx
from defusedxml import DefusedXmlException

from connectors.errors import AuthenticationFailed, UpstreamError, UpstreamRejected, UpstreamUnavailable

__all__ = ["CONTENT_TYPE", "SOAP_ACTION_PREFIX", "SOAP_NS", "WSSE_NS", "WSU_NS", "XF_NS", "envelope",
           "fault_error", "parse_answer", "parse_xml", "serialize", "translate_fault", "xf"]

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XF_NS = "urn:xinfang:petition:v1"
SOAP_ACTION_PREFIX = f"{XF_NS}/"
CONTENT_TYPE = "text/xml; charset=utf-8"
SECURITY_FAULTS = frozenset({"FailedAuthentication", "InvalidSecurity", "InvalidSecurityToken",
                             "FailedCheck", "SecurityTokenUnavailable", "UnsupportedSecurityToken",
                             "MessageExpired"})

for _prefix, _uri in (("soap", SOAP_NS), ("wsse", WSSE_NS), ("wsu", WSU_NS), ("xf", XF_NS)):
    ET.register_namespace(_prefix, _uri)  # readable prefixes on the wire (ElementTree writes ns0 …)


def xf(name: str) -> str:
    """The Clark name of an element in the service's namespace."""
    return f"{{{XF_NS}}}{name}"


def serialize(element: Element) -> bytes:
    return bytes(ET.tostring(element, encoding="utf-8", xml_declaration=True))


def envelope(operation: str, fields: dict[str, str | list[str]]) -> bytes:
    """A SOAP 1.1 request ``<xf:operation>`` with one child per field (a list becomes ``<ids><id>…``).

    The header is left empty for :class:`~connectors.petition.wsse.UsernameToken` to fill.
    """
    root = Element(f"{{{SOAP_NS}}}Envelope")
    ET.SubElement(root, f"{{{SOAP_NS}}}Header")
    request = ET.SubElement(ET.SubElement(root, f"{{{SOAP_NS}}}Body"), xf(operation))
    for name, value in fields.items():
        child = ET.SubElement(request, xf(name))
        if isinstance(value, list):
            for entry in value:
                ET.SubElement(child, xf("id")).text = entry
        else:
            child.text = value
    return serialize(root)


def parse_xml(content: bytes) -> Element:
    """Parse XML with DTDs, entities and external references forbidden.

    Raises:
        UpstreamRejected: the document declares a DTD or entities, or is not well-formed.
    """
    try:
        return SafeET.fromstring(content, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise UpstreamRejected(f"answer refused: it declares a DTD or entities ({type(exc).__name__}); "
                               "entity expansion and external entities are not allowed") from None
    except ET.ParseError as exc:
        raise UpstreamRejected(f"answer is not well-formed XML: {exc}") from None


def _local(code: str) -> str:
    """``wsse:FailedAuthentication`` → ``FailedAuthentication``; ``soap:Server.Db`` → ``Server``."""
    return code.rpartition(":")[2].partition(".")[0]


def fault_error(fault: Element) -> UpstreamError:
    """The typed error a ``soap:Fault`` element stands for."""
    code = (fault.findtext("faultcode") or "").strip()
    text = (fault.findtext("faultstring") or "").strip()[:300]
    message = f"SOAP fault {code or '(no code)'}: {text}"
    local = _local(code)
    if local in SECURITY_FAULTS:
        return AuthenticationFailed(message, status=500)
    if local == "Server":
        return UpstreamUnavailable(message, status=500)
    return UpstreamRejected(message, status=500)


def parse_answer(content: bytes, operation: str) -> Element:
    """The ``<xf:operationResponse>`` element of an answer.

    Raises:
        UpstreamRejected: unsafe or malformed XML, not a SOAP 1.1 envelope, or no such response element.
        AuthenticationFailed, UpstreamUnavailable: the answer is a fault (some servers send them on 200).
    """
    root = parse_xml(content)
    body = root.find(f"{{{SOAP_NS}}}Body") if root.tag == f"{{{SOAP_NS}}}Envelope" else None
    if body is None:
        raise UpstreamRejected(f"{operation}: answer is not a SOAP 1.1 envelope")
    fault = body.find(f"{{{SOAP_NS}}}Fault")
    if fault is not None:
        raise fault_error(fault)
    response = body.find(xf(f"{operation}Response"))
    if response is None:
        raise UpstreamRejected(f"{operation}: answer has no {operation}Response")
    return response


async def translate_fault(response: httpx.Response) -> None:
    """httpx response hook: a SOAP fault (HTTP 500 with an XML body) raises its typed error.

    Other 500s are left to :func:`connectors.http.send`, which treats them as server trouble.
    """
    if response.status_code != 500 or "xml" not in response.headers.get("content-type", "").lower():
        return
    await response.aread()
    try:
        root = SafeET.fromstring(response.content, forbid_dtd=True)
    except DefusedXmlException:
        raise UpstreamRejected("SOAP fault refused: it declares a DTD or entities", status=500) from None
    except ET.ParseError:
        return
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    if fault is not None:
        raise fault_error(fault)

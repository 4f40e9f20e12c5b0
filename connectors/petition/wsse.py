"""WS-Security UsernameToken with PasswordDigest, as an ``httpx.Auth`` flow.

Each send — a retry after 429 too — gets a fresh nonce and ``Created``, because the petition service
refuses a nonce it has seen and a ``Created`` older than five minutes. The flow adds the
``wsse:Security`` header to the SOAP envelope the request already carries.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import httpx

from connectors.petition.soap import SOAP_NS, WSSE_NS, WSU_NS, parse_xml, serialize

__all__ = ["NONCE_ENCODING", "PASSWORD_DIGEST", "UsernameToken", "password_digest"]

# the Password element's Type URI, not a secret
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"  # noqa: S105
                   "#PasswordDigest")
NONCE_ENCODING = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
                  "#Base64Binary")


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``Base64(SHA1(nonce + created + password))`` — SHA-1 because the UsernameToken profile says so."""
    digest = hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


class UsernameToken(httpx.Auth):
    """Adds a UsernameToken (PasswordDigest, nonce, Created) to every SOAP request.

    Args:
        username, password: the service credentials.
        clock: unix time in seconds (tests pass a stale clock).
        nonces: raw nonce bytes to use in turn (tests repeat one); default 16 random bytes each.
    """

    requires_request_body = True

    def __init__(self, username: str, password: str, *, clock: Callable[[], float] = time.time,
                 nonces: Iterable[bytes] | None = None) -> None:
        self.username = username
        self._password = password
        self.clock = clock
        self._nonces = iter(nonces) if nonces is not None else None

    def _nonce(self) -> bytes:
        return next(self._nonces) if self._nonces is not None else secrets.token_bytes(16)

    def security(self) -> Element:
        """A fresh ``wsse:Security`` header element."""
        nonce = self._nonce()
        created = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        security = ET.Element(f"{{{WSSE_NS}}}Security", {f"{{{SOAP_NS}}}mustUnderstand": "1"})
        token = ET.SubElement(security, f"{{{WSSE_NS}}}UsernameToken")
        ET.SubElement(token, f"{{{WSSE_NS}}}Username").text = self.username
        ET.SubElement(token, f"{{{WSSE_NS}}}Password", {"Type": PASSWORD_DIGEST}).text = password_digest(
            nonce, created, self._password)
        ET.SubElement(token, f"{{{WSSE_NS}}}Nonce", {"EncodingType": NONCE_ENCODING}).text = (
            base64.b64encode(nonce).decode())
        ET.SubElement(token, f"{{{WSU_NS}}}Created").text = created
        return security

    def sign(self, request: httpx.Request) -> httpx.Request:
        """A copy of ``request`` whose envelope carries a fresh security header."""
        envelope = parse_xml(request.content)  # our own envelope, parsed as safely as any answer
        header = envelope.find(f"{{{SOAP_NS}}}Header")
        if header is None:
            header = Element(f"{{{SOAP_NS}}}Header")
            envelope.insert(0, header)
        header.append(self.security())
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
        return httpx.Request(request.method, request.url, headers=headers, content=serialize(envelope),
                             extensions=request.extensions)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # only SOAP messages carry a security header (``GET ?wsdl`` has no body to put it in)
        yield self.sign(request) if request.content else request

"""WS-Security UsernameToken (PasswordDigest) as the petition service checks it.

The digest is ``Base64(SHA1(nonce + created + password))`` with the nonce's raw bytes (it travels
Base64-encoded). ``Created`` must lie within five minutes of the service's clock, and a nonce is
accepted once: a replayed message is refused even while it is fresh. Every failure is the fault
``wsse:FailedAuthentication`` (HTTP 500).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from xml.etree.ElementTree import Element

from sandbox.petition.soap import WSSE_NS, WSU_NS, SoapFault

__all__ = ["FRESHNESS_SECONDS", "PASSWORD_DIGEST", "UsernameTokenGate", "password_digest"]

PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
                   "#PasswordDigest")
FRESHNESS_SECONDS = 300.0


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``Base64(SHA1(nonce + created + password))``, the UsernameToken profile's PasswordDigest."""
    digest = hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def _failed(reason: str) -> SoapFault:
    return SoapFault("wsse:FailedAuthentication", f"身份认证失败：{reason}")


def _text(parent: Element, tag: str) -> str:
    element = parent.find(tag)
    return "" if element is None or element.text is None else element.text.strip()


def _created_epoch(created: str) -> float:
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        raise _failed("Created不是ISO 8601时间") from None
    if moment.tzinfo is None:
        raise _failed("Created须带时区（如Z）")
    return moment.timestamp()


class UsernameTokenGate:
    """Checks the ``wsse:Security`` header of each request.

    Args:
        users: username → password.
        clock: unix time in seconds.
    """

    def __init__(self, users: Mapping[str, str], *, clock: Callable[[], float] = time.time) -> None:
        self.users = dict(users)
        self.clock = clock
        self._nonces: dict[tuple[str, str], float] = {}  # (username, nonce) → when first seen

    def check(self, header: Element | None) -> str:
        """The authenticated username.

        Raises:
            SoapFault: ``wsse:FailedAuthentication`` with the reason.
        """
        security = None if header is None else header.find(f"{{{WSSE_NS}}}Security")
        token = None if security is None else security.find(f"{{{WSSE_NS}}}UsernameToken")
        if token is None:
            raise _failed("缺少wsse:Security/UsernameToken")
        username = _text(token, f"{{{WSSE_NS}}}Username")
        password = token.find(f"{{{WSSE_NS}}}Password")
        if password is None or password.get("Type") != PASSWORD_DIGEST:
            raise _failed("仅接受PasswordDigest")
        nonce_text, created = _text(token, f"{{{WSSE_NS}}}Nonce"), _text(token, f"{{{WSU_NS}}}Created")
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
        except (binascii.Error, ValueError):
            raise _failed("Nonce不是Base64") from None
        if not nonce or not created:
            raise _failed("缺少Nonce或Created")
        now = self.clock()
        if abs(now - _created_epoch(created)) > FRESHNESS_SECONDS:
            raise _failed("Created超出5分钟有效期")
        expected = self.users.get(username)
        given = (password.text or "").strip()
        if expected is None or not hmac.compare_digest(given, password_digest(nonce, created, expected)):
            raise _failed("用户名或密码摘要错误")
        self._remember(username, nonce_text, now)
        return username

    def _remember(self, username: str, nonce: str, now: float) -> None:
        # a nonce older than twice the freshness window can no longer come with a fresh Created
        for key in [k for k, seen in self._nonces.items() if now - seen > 2 * FRESHNESS_SECONDS]:
            del self._nonces[key]
        if (username, nonce) in self._nonces:
            raise _failed("Nonce已使用（疑似重放）")
        self._nonces[(username, nonce)] = now

"""Keyed hashes of verified identities: how a resident is matched to appeals without storing who they are.

A resident's appeals are found by the keyed hash (HMAC-SHA256 under the gateway's hash key) of
their verified phone number or national ID, never by name. The same :class:`IdentityHasher`
must hash the parties of ingested cases and the identities of logged-in residents, so both sides
normalise alike: phone numbers lose separators and the +86/0086 prefix, ID numbers whitespace and
case.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

__all__ = ["IdentityHasher", "normalise_id_number", "normalise_phone"]

_NON_DIGITS = re.compile(r"\D")


def normalise_phone(phone: str) -> str | None:
    """``+86 138-2756-1234`` → ``13827561234``; ``None`` when no digit is left."""
    digits = _NON_DIGITS.sub("", unicodedata.normalize("NFKC", phone))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits or None


def normalise_id_number(id_number: str) -> str | None:
    """A national ID upper-cased without whitespace (``…234x`` → ``…234X``); ``None`` when empty."""
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", id_number)).upper() or None


class IdentityHasher:
    """``hasher.phone(p)``, ``hasher.id_number(n)``: hex HMAC-SHA256 of ``phone:<digits>`` / ``id:<ID>``.

    The digests equal :func:`casework.store.identity_digests` (the store's identity index), so a
    viewer's hashes are looked up in that index as they are.
    """

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the identity hash key must not be empty")
        self._key = key

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def phone(self, phone: str) -> str | None:
        normal = normalise_phone(phone)
        return None if normal is None else self._digest("phone", normal)

    def id_number(self, id_number: str) -> str | None:
        normal = normalise_id_number(id_number)
        return None if normal is None else self._digest("id", normal)

    def hashes(self, *, phone: str | None = None, id_number: str | None = None) -> frozenset[str]:
        """Every hash of the given identity attributes (absent or empty ones are skipped)."""
        found = {self.phone(phone) if phone else None, self.id_number(id_number) if id_number else None}
        return frozenset(h for h in found if h is not None)

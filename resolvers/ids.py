"""Global ids: URL-safe base64 of ``"<Type>:<key>"`` (unpadded), opaque to clients.

``Case`` keys are themselves ``<channel>:<source id>``; only the first ``:`` separates the type.
"""

from __future__ import annotations

import base64
import binascii

from resolvers.errors import BadUserInput

__all__ = ["decode_global_id", "decode_id_of", "encode_global_id"]

MAX_ID_LENGTH = 1024


def encode_global_id(type_name: str, key: str) -> str:
    raw = f"{type_name}:{key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_global_id(global_id: str) -> tuple[str, str]:
    """Split a global id into ``(type name, key)``.

    Raises:
        BadUserInput: not a global id of this graph.
    """
    if not global_id or len(global_id) > MAX_ID_LENGTH:
        raise BadUserInput(f"malformed id {global_id[:64]!r}")
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise BadUserInput(f"malformed id {global_id[:64]!r}") from None
    type_name, sep, key = text.partition(":")
    if not sep or not type_name.isidentifier() or not key:
        raise BadUserInput(f"malformed id {global_id[:64]!r}")
    return type_name, key


def decode_id_of(type_name: str, global_id: str) -> str:
    """The key of a global id that must name a ``type_name``.

    Raises:
        BadUserInput: malformed, or the id of another type.
    """
    found, key = decode_global_id(global_id)
    if found != type_name:
        raise BadUserInput(f"expected the id of a {type_name}, got the id of a {found}")
    return key

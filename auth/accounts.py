"""The embedded identity provider's accounts: people (password, optional TOTP) and department systems.

Accounts are read from a YAML file (``auth/data/accounts.yaml`` holds the demo accounts, each with
password ``demo``, documented at the top of that file). Passwords and client secrets are stored
only as argon2id hashes; ``python -m auth.accounts hash`` prints the hash of a password read from
stdin, for editing the file.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auth.viewer import Role

__all__ = ["DEMO_ACCOUNTS_FILE", "Account", "AccountBook", "Identity", "ServiceClient", "normalise_username"]

DEMO_ACCOUNTS_FILE = Path(__file__).with_name("data") / "accounts.yaml"
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so unknown and known names take the same time.
    return _HASHER.hash("minsheng-no-such-account")


def normalise_username(username: str) -> str:
    """Usernames compare case-insensitively, after Unicode NFKC and trimming."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """Whether ``secret`` matches the argon2 hash (a missing hash still costs one verification)."""
    try:
        return _HASHER.verify(secret_hash or _dummy_hash(), secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(_Model):
    """A resident's verified identity (phone and national ID checked at registration)."""

    resident_id: str | None = None
    phone: str | None = None
    id_number: str | None = None


class Account(_Model):
    """A person who logs in with username and password (and TOTP when ``totp_secret`` is set)."""

    username: str = Field(min_length=1, max_length=64)
    name: str
    roles: frozenset[Role]
    password_hash: str = Field(pattern=r"^\$argon2id?\$")
    subject: str | None = None
    region_ids: frozenset[str] = frozenset()
    department_id: str | None = None
    totp_secret: str | None = Field(default=None, pattern=r"^[A-Z2-7]{24,}=*$")
    identity: Identity | None = None
    disabled: bool = False

    @field_validator("roles")
    @classmethod
    def _no_open_role(cls, roles: frozenset[Role]) -> frozenset[Role]:
        if not roles or Role.OPEN in roles or Role.SERVICE in roles:
            raise ValueError("a person needs roles other than open/service")
        return roles

    @property
    def sub(self) -> str:
        return self.subject or f"user:{self.username}"


class ServiceClient(_Model):
    """A department system that gets tokens by OAuth2 client credentials."""

    client_id: str = Field(min_length=1, max_length=64)
    name: str
    secret_hash: str = Field(pattern=r"^\$argon2id?\$")
    roles: frozenset[Role] = frozenset({Role.SERVICE})
    department_id: str | None = None
    region_ids: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    disabled: bool = False

    @property
    def sub(self) -> str:
        return f"client:{self.client_id}"


class _File(_Model):
    users: list[Account] = []
    clients: list[ServiceClient] = []


class AccountBook:
    """Accounts by normalised username and clients by id."""

    def __init__(self, users: list[Account] | tuple[Account, ...] = (),
                 clients: list[ServiceClient] | tuple[ServiceClient, ...] = ()) -> None:
        self.users = {normalise_username(a.username): a for a in users}
        self.clients = {c.client_id: c for c in clients}
        if len(self.users) != len(users) or len(self.clients) != len(clients):
            raise ValueError("duplicate username or client_id in the accounts")

    @classmethod
    def load(cls, path: str | Path | None = None) -> AccountBook:
        """Read an accounts file (the demo accounts by default); every problem is listed at once."""
        source = Path(path) if path is not None else DEMO_ACCOUNTS_FILE
        raw: Any = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        try:
            parsed = _File.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{source}: {problems}") from None
        return cls(parsed.users, parsed.clients)

    def user(self, username: str) -> Account | None:
        account = self.users.get(normalise_username(username))
        return None if account is None or account.disabled else account

    def client(self, client_id: str) -> ServiceClient | None:
        client = self.clients.get(client_id)
        return None if client is None or client.disabled else client


def main(argv: list[str] | None = None) -> int:
    """``python -m auth.accounts hash``: print the argon2id hash of the password on stdin."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["hash"]:
        print("usage: python -m auth.accounts hash  < password", file=sys.stderr)
        return 2
    print(hash_secret(sys.stdin.readline().rstrip("\n")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

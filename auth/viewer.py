"""Who is asking: the viewer every resolver checks rights against."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Role", "Viewer"]


class Role(StrEnum):
    DISTRICT = "district"          # district command centre: everything, dispatches
    STREET = "street"              # street officer: that street and beneath
    COMMUNITY = "community"        # community officer: that community and beneath
    DEPARTMENT = "department"      # a department: what is assigned or summoned to it
    PETITION_STAFF = "petition_staff"
    RESIDENT = "resident"          # own appeals only
    SERVICE = "service"            # a department system's client-credentials account
    OPEN = "open"                  # no login configured yet (development only)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller of one request (or subscription)."""

    subject: str
    username: str
    display_name: str
    roles: frozenset[Role]
    region_ids: frozenset[str] = frozenset()     # jurisdiction roots (street/community ids)
    department_id: str | None = None
    identity_hashes: frozenset[str] = frozenset()  # keyed hashes of a resident's verified phone/ID
    scopes: frozenset[str] = frozenset()
    claims: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def authenticated(self) -> bool:
        return Role.OPEN not in self.roles and bool(self.roles)

    def has(self, role: Role) -> bool:
        return role in self.roles

    @classmethod
    def open_access(cls) -> Viewer:
        """The viewer before login exists: sees everything. Never used once auth is configured."""
        return cls(subject="open", username="open", display_name="未登录（开放模式）",
                   roles=frozenset({Role.OPEN}))

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls(subject="anonymous", username="anonymous", display_name="匿名", roles=frozenset())

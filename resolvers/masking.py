"""Personal data as the viewer may see it: the graph's glue over :mod:`auth.masking`.

The shapes (``138****5678``, ``440***********1234``, ``陈**``) and the policy (masked, withheld for a
petitioner, in clear only on a permitted request) live in ``auth``; this module feeds them the
facts of a case (:func:`resolvers.rights.known_facts`). ``reveal`` is the viewer's explicit request
to read personal data in clear (``Case.citizen(reveal: true)``, ``parties``, ``address``,
``source``): granted field by field where :func:`auth.rights.can_unmask` allows, and every such
request is written to the audit log — what was shown in clear, or that it was refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from auth.audit import Outcome
from auth.masking import PartyView, mask_case_address, mask_party, mask_personal, mask_text, personal_kind
from auth.rights import PERSONAL_FIELDS, CaseFacts, Disclosure, can_unmask, disclosure
from auth.viewer import Viewer
from casework.model import StoredCase
from connectors import Party
from resolvers.ids import encode_global_id
from resolvers.rights import audit_read, known_facts

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["audit_reveal", "case_address", "mask_field", "mask_free_text", "party_views", "source_reveal"]


def audit_reveal(ctx: GraphContext, case: StoredCase, fields: Iterable[str], *, what: str) -> None:
    """The audit entry of one ``reveal`` request on ``case``: the fields shown in clear, or a refusal."""
    shown = sorted(set(fields))
    outcome = Outcome.OK if shown else Outcome.DENIED
    audit_read(ctx, encode_global_id("Case", case.key), shown, outcome=outcome, detail=what)


def party_views(ctx: GraphContext, case: StoredCase, parties: Iterable[Party], *,
                reveal: bool = False, what: str = "parties") -> list[PartyView]:
    """``parties`` of ``case`` as the viewer may see them; a ``reveal`` request is audited."""
    facts = known_facts(ctx, case)
    views = [mask_party(party, ctx.viewer, facts, unmask=reveal) for party in parties]
    if reveal:
        audit_reveal(ctx, case, (name for view in views for name in view.clear_fields), what=what)
    return views


def case_address(ctx: GraphContext, case: StoredCase, *, reveal: bool = False) -> str | None:
    """Where the problem is, down to the road or estate (the house number masked unless revealed)."""
    address, how = mask_case_address(case.address, ctx.viewer, known_facts(ctx, case), unmask=reveal)
    if reveal and case.address is not None:
        audit_reveal(ctx, case, ["address"] if how is Disclosure.CLEAR else [], what="address")
    return address


def source_reveal(ctx: GraphContext, case: StoredCase, reveal: bool) -> bool:
    """Whether ``Case.source(reveal: true)`` shows anything in clear; the request is audited either way."""
    if not reveal:
        return False
    facts = known_facts(ctx, case)
    granted = [name for name in sorted(PERSONAL_FIELDS) if can_unmask(ctx.viewer, name, facts)]
    audit_reveal(ctx, case, granted, what="source")
    return bool(granted)


_LONG_NUMBER = re.compile(r"\d{11}")


def mask_free_text(text: str) -> str:
    """Phone and ID numbers typed into free text, masked; most text has none, so look first."""
    return mask_text(text) if _LONG_NUMBER.search(text) else text


def mask_field(viewer: Viewer, facts: CaseFacts, field: str, value: Any, *, personal: bool,
               unmask: bool = False) -> Any:
    """A string (or list of strings) of a channel's source record as ``viewer`` may see it.

    ``personal`` fields (the connector marks them ``json_schema_extra={"personal": True}``) are
    masked by kind, withheld (``None``) where the policy withholds the party, and in clear only on
    a permitted ``unmask`` request; other text has phone and ID numbers typed into it masked.
    """
    if not personal:
        return _each(value, mask_free_text)
    kind = personal_kind(field)
    how = disclosure(viewer, kind, facts, unmask=unmask)
    if how is Disclosure.WITHHELD:
        return None
    return value if how is Disclosure.CLEAR else _each(value, lambda text: mask_personal(kind, text))


def _each(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, list):
        return [mask(item) if isinstance(item, str) else item for item in value]
    return mask(value) if isinstance(value, str) else value

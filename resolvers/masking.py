"""Personal data as the viewer may see it: the graph's glue over :mod:`auth.masking`.

The shapes (``138****5678``, ``440***********1234``, ``陈**``) and the policy (masked, withheld for a
petitioner, in clear only on a permitted request) live in ``auth``; this module feeds them the
facts of a case. Nothing is unmasked yet: the explicit ``unmask`` request comes with login.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from auth.masking import PartyView, mask_case_address, mask_party, mask_personal, mask_text, personal_kind
from auth.rights import CaseFacts, Disclosure, disclosure
from auth.viewer import Viewer
from casework.model import StoredCase
from connectors import Party

if TYPE_CHECKING:
    from resolvers.context import GraphContext

__all__ = ["case_address", "case_facts", "mask_field", "mask_free_text", "party_view"]


def case_facts(ctx: GraphContext, case: StoredCase) -> CaseFacts:
    """What the rights policy needs to know about ``case`` (worked out once per request)."""
    facts = ctx.loaders.facts.get(case.key)
    if facts is None:
        regions: frozenset[str] = frozenset()
        if case.region_id is not None and case.region_id in ctx.resources.reference.regions:
            regions = frozenset(r.id for r in ctx.resources.reference.region_ancestors(case.region_id))
        facts = ctx.loaders.facts[case.key] = CaseFacts(channel=case.channel, region_ids=regions)
    return facts


def party_view(ctx: GraphContext, case: StoredCase, party: Party) -> PartyView:
    return mask_party(party, ctx.viewer, case_facts(ctx, case))


def case_address(ctx: GraphContext, case: StoredCase) -> str | None:
    """Where the problem is, down to the road or estate (the house number masked)."""
    address, _ = mask_case_address(case.address, ctx.viewer, case_facts(ctx, case))
    return address


_LONG_NUMBER = re.compile(r"\d{11}")


def mask_free_text(text: str) -> str:
    """Phone and ID numbers typed into free text, masked; most text has none, so look first."""
    return mask_text(text) if _LONG_NUMBER.search(text) else text


def mask_field(viewer: Viewer, facts: CaseFacts, field: str, value: Any, *, personal: bool) -> Any:
    """A string (or list of strings) of a channel's source record as ``viewer`` may see it.

    ``personal`` fields (the connector marks them ``json_schema_extra={"personal": True}``) are
    masked by kind, or withheld (``None``) where the policy withholds the party; other text has
    phone and ID numbers typed into it masked.
    """
    if not personal:
        return _each(value, mask_free_text)
    kind = personal_kind(field)
    how = disclosure(viewer, kind, facts)
    if how is Disclosure.WITHHELD:
        return None
    return value if how is Disclosure.CLEAR else _each(value, lambda text: mask_personal(kind, text))


def _each(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, list):
        return [mask(item) if isinstance(item, str) else item for item in value]
    return mask(value) if isinstance(value, str) else value

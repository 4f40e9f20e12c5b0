"""Rights checks the resolvers make, over :mod:`auth.rights` (login itself is its own issue)."""

from __future__ import annotations

from auth.rights import is_operator
from auth.viewer import Viewer
from resolvers.errors import Forbidden, Unauthenticated

__all__ = ["require_operator"]


def require_operator(viewer: Viewer) -> None:
    """Operators (the district command centre) see the plumbing: quarantine, raw records.

    Raises:
        Unauthenticated: nobody is logged in.
        Forbidden: the viewer is not an operator.
    """
    if not viewer.roles:
        raise Unauthenticated("log in to see this")
    if not is_operator(viewer):
        raise Forbidden("only the district command centre may see this")

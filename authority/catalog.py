"""The authority kinds, kept in each process for a few seconds (h2h_core.catalog).

Every decision and check names its kind by code; the table has a handful of rows, changed only by
migrations and data fixes. A process sees a change within H2H_CATALOG_SECONDS; a kind added since
its copy was read is found at once (a code missing from the copy rereads it).
"""

from __future__ import annotations

from h2h_core.catalog import Cached

from .models import AuthorityKind


def _load() -> dict[str, AuthorityKind]:
    return {kind.code: kind for kind in AuthorityKind.objects.all()}


_kinds = Cached(_load)


def kind_for_code(code: str) -> AuthorityKind | None:
    """Return the kind with this code, or None. Treat it as read-only: the instance is shared."""
    kind = _kinds.get().get(code)
    if kind is None:
        _kinds.forget()
        kind = _kinds.get().get(code)
    return kind

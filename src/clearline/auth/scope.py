"""Access filters that repositories apply to every query (load scoped first, then check the role)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, false, true

from clearline.auth.actor import Actor


def brand_filter(actor: Actor, column: Any, roles: Iterable[str] | None = None) -> ColumnElement[bool]:
    """Rows whose brand is within the actor's staff scope (for the given roles)."""
    scope = actor.brand_scope(roles)
    if scope is None:
        return true()
    if not scope:
        return false()
    return column.in_(sorted(scope))

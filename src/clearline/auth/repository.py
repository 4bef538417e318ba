"""Read queries on users that other domains' views need (display names of approvers and signers)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.models import User


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names by user id; a name is what pages show beside an approval or an acceptance."""
    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}

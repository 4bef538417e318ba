"""Column helpers shared by the model files."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.clock import utcnow
from clearline.kit.db import BigId, UTCDateTime


def pk() -> Mapped[int]:
    return mapped_column(BigId, primary_key=True, autoincrement=True)


def created_at() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, server_default=func.current_timestamp())

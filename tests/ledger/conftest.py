from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.commission.program import Program, build


@pytest.fixture
def program(db: Session) -> Program:
    return build(db)

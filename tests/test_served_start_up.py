"""`clearline serve`'s start-up takes what it loaded out of the garbage collector's generations (a full collection
then walks only what requests left behind); the app as tests and other hosts build it does not."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from clearline.app import create_app


@pytest.mark.parametrize("served", [True, False])
def test_only_the_served_app_freezes_its_start_up_objects(database_url: str, served: bool) -> None:
    gc.unfreeze()
    try:
        with TestClient(create_app(served=served)) as client:
            assert client.get("/healthz").status_code == 200
            frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # back into the oldest generation: later tests' garbage is collected as before

    if served:
        assert frozen > 50_000  # the modules, the app and its routes at least
    else:
        assert frozen == 0

"""Every row of the role × endpoint matrix."""

from __future__ import annotations

from tests.auth.matrix import Endpoint
from tests.auth.routes_foundation import FOUNDATION
from tests.auth.routes_sales import SALES

ENDPOINTS: list[Endpoint] = [*FOUNDATION, *SALES]
BY_KEY = {endpoint.key: endpoint for endpoint in ENDPOINTS}

"""The postback hot path validates a body straight from its bytes; it must accept, refuse and name bad fields
exactly as the service's parse-then-validate path does."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.ingest import fastpath, service
from clearline.kit.errors import ClearlineError
from tests.ingest.conftest import order_body

ORDER = json.loads(order_body("H-1"))
REFUND = {"refund_id": "R-1", "order_id": "H-1", "created_at": "2026-11-01T10:00:00Z", "kind": "return",
          "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": "49.00"}]}  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["19.99", "1e3", "-1", " 5.00 ", "USD", "jpy", "2026-11-01T10:00:00", "2026-11-01T10:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _at(body: Any, path: str) -> Any:
    """The object at a dotted path ("lines.0"), or None once a step is missing."""
    target = body
    for part in path.split(".") if path else []:
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        elif isinstance(target, dict):
            target = target.get(part)
        else:
            return None
    return target


def _mutated(base: dict[str, Any], draw: Any) -> Any:
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        target = _at(body, draw(st.sampled_from(["", "lines.0", "customer"])))
        if isinstance(target, dict):
            key = draw(st.sampled_from([*target, "extra"]))
            if key in target and draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(json_values)
    return body if draw(st.integers(0, 9)) else draw(json_values | st.just({"order": body}))


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call().model_dump())
    except ClearlineError as exc:
        return ("refused", exc.status_code, exc.to_dict())


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from(["order", "refund"]))
def test_the_bytes_path_agrees_with_the_services_path(data: Any, kind: str) -> None:
    payload = _mutated(ORDER if kind == "order" else REFUND, data.draw)
    body = json.dumps(payload).encode()

    fast = _outcome(lambda: fastpath.validated(kind, body))
    reference = _outcome(lambda: service.normalise("postback", kind, service.parse_json(body)))

    assert fast == reference


def test_a_good_order_and_a_malformed_body_both_match() -> None:
    body = order_body("H-2")
    assert _outcome(lambda: fastpath.validated("order", body))[0] == "ok"
    for bad in (b"{", b"\xff\xfe", b"[]", b'{"order": ' + body + b"}"):
        assert _outcome(lambda bad=bad: fastpath.validated("order", bad)) == _outcome(
            lambda bad=bad: service.normalise("postback", "order", service.parse_json(bad))
        )


def test_a_time_past_the_last_utc_datetime_is_a_422_naming_it() -> None:
    body = order_body("H-3").replace(b'"created_at": "', b'"created_at": "9999-12-31T23:00:00-05:00", "x": "', 1)
    for call in (
        lambda: fastpath.validated("order", body),
        lambda: service.normalise("postback", "order", service.parse_json(body)),
    ):
        refused = _outcome(call)
        assert refused[:2] == ("refused", 422)
        assert [e["loc"] for e in refused[2]["errors"]] == [["created_at"]]

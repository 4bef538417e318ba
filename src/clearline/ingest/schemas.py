"""Incoming orders and refunds: the postback format of INTERFACES §2–3, and Shopify and WooCommerce
payloads mapped onto it. Every bad field is named; money arrives as decimal strings, never floats."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from clearline.kit import money


def _decimal_string(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError('money must be a decimal string such as "19.99", not a JSON number')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return money.parse_decimal(value)
        except money.MoneyError as exc:
            raise ValueError(str(exc)) from None
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CustomerIn(_In):
    id: str | None = Field(default=None, max_length=128)
    email_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    new_customer: bool | None = None


class OrderLineIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Money
    discount: Money = Decimal(0)


class OrderIn(_In):
    order_id: str = Field(min_length=1, max_length=128)
    created_at: dt.datetime
    currency: str
    customer: CustomerIn | None = None
    click_id: str | None = Field(default=None, max_length=128)
    coupon_codes: list[str] = Field(default_factory=list)
    landing_url: str | None = Field(default=None, max_length=2000)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=5000)
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-01T12:00:00Z")
        return value.astimezone(dt.UTC)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return money.check_currency(value)
        except money.MoneyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("coupon_codes")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        return [c.strip().upper() for c in codes if c and c.strip()]

    @model_validator(mode="after")
    def _amounts_fit_currency(self) -> OrderIn:
        problems = []
        for index, line in enumerate(self.lines):
            for name in ("unit_price", "discount"):
                value = getattr(line, name)
                if money.round_half_up(value, self.currency) != value:
                    problems.append(f"lines.{index}.{name}: more digits than {self.currency} allows")
            if line.discount > line.unit_price * line.quantity:
                problems.append(f"lines.{index}.discount: larger than quantity × unit_price")
        for name in ("shipping", "tax"):
            value = getattr(self, name)
            if money.round_half_up(value, self.currency) != value:
                problems.append(f"{name}: more digits than {self.currency} allows")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RefundLineIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=0, ge=0)
    amount: Money


class RefundIn(_In):
    refund_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=128)
    created_at: dt.datetime
    kind: Literal["return", "chargeback"] = "return"
    lines: list[RefundLineIn] = Field(min_length=1)

    _aware = field_validator("created_at")(OrderIn._aware.__func__)  # type: ignore[attr-defined]


# --- Shopify and WooCommerce -----------------------------------------------------------------------


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def shopify_order(payload: dict[str, Any]) -> dict[str, Any]:
    """Shopify's order JSON (as its orders/create webhook sends it) in the postback shape."""
    customer = payload.get("customer") or {}
    email = payload.get("email") or customer.get("email") or ""
    lines = []
    for item in payload.get("line_items") or []:
        discount = item.get("total_discount") or "0"
        lines.append(
            {
                "sku": item.get("sku") or _s(item.get("variant_id") or item.get("id")),
                "quantity": item.get("quantity"),
                "unit_price": _s(item.get("price")),
                "discount": _s(discount),
            }
        )
    orders_count = customer.get("orders_count")
    shipping = sum((Decimal(_s(x.get("price") or "0")) for x in payload.get("shipping_lines") or []), Decimal(0))
    return {
        "order_id": _s(payload.get("id")),
        "created_at": payload.get("created_at"),
        "currency": payload.get("currency"),
        "customer": {
            "id": _s(customer.get("id")) or None,
            "email_sha256": _sha256(email) if email else None,
            "new_customer": None if orders_count is None else int(orders_count) <= 1,
        },
        "coupon_codes": [d.get("code") for d in payload.get("discount_codes") or [] if d.get("code")],
        "landing_url": _absolute(payload.get("landing_site")),
        "lines": lines,
        "shipping": str(shipping),
        "tax": _s(payload.get("total_tax") or "0"),
        "ip": payload.get("browser_ip"),
        "user_agent": (payload.get("client_details") or {}).get("user_agent"),
    }


def shopify_refund(payload: dict[str, Any]) -> dict[str, Any]:
    lines = []
    for item in payload.get("refund_line_items") or []:
        line_item = item.get("line_item") or {}
        amount = item.get("subtotal")
        if amount is None:
            amount = Decimal(_s(line_item.get("price") or "0")) * int(item.get("quantity") or 0)
        lines.append(
            {
                "sku": line_item.get("sku") or _s(item.get("line_item_id")),
                "quantity": item.get("quantity") or 0,
                "amount": _s(amount),
            }
        )
    return {
        "refund_id": _s(payload.get("id")),
        "order_id": _s(payload.get("order_id")),
        "created_at": payload.get("created_at"),
        "kind": "return",
        "lines": lines,
    }


def woocommerce_order(payload: dict[str, Any]) -> dict[str, Any]:
    billing = payload.get("billing") or {}
    lines = []
    for item in payload.get("line_items") or []:
        quantity = int(item.get("quantity") or 0)
        subtotal = Decimal(_s(item.get("subtotal") or "0"))
        total = Decimal(_s(item.get("total") or "0"))
        unit = (subtotal / quantity) if quantity else Decimal(0)
        lines.append(
            {
                "sku": item.get("sku") or _s(item.get("product_id")),
                "quantity": quantity,
                "unit_price": _s(unit.normalize() if unit == unit.to_integral() else unit),
                "discount": _s(subtotal - total),
            }
        )
    created = payload.get("date_created_gmt") or payload.get("date_created")
    if created and "+" not in created and not created.endswith("Z"):
        created += "+00:00"
    meta = {m.get("key"): m.get("value") for m in payload.get("meta_data") or [] if isinstance(m, dict)}
    email = billing.get("email") or ""
    return {
        "order_id": _s(payload.get("id")),
        "created_at": created,
        "currency": payload.get("currency"),
        "customer": {"id": _s(payload.get("customer_id")) or None, "email_sha256": _sha256(email) if email else None},
        "coupon_codes": [c.get("code") for c in payload.get("coupon_lines") or [] if c.get("code")],
        "landing_url": meta.get("_clearline_landing_url") or meta.get("landing_url"),
        "click_id": meta.get("_clearline_clid") or meta.get("clid"),
        "lines": lines,
        "shipping": _s(payload.get("shipping_total") or "0"),
        "tax": _s(payload.get("total_tax") or "0"),
        "ip": payload.get("customer_ip_address"),
        "user_agent": payload.get("customer_user_agent"),
    }


def woocommerce_refund(payload: dict[str, Any], *, order_id: str | None = None) -> dict[str, Any]:
    lines = []
    for item in payload.get("line_items") or []:
        total = Decimal(_s(item.get("total") or "0"))
        lines.append(
            {
                "sku": item.get("sku") or _s(item.get("product_id")),
                "quantity": abs(int(item.get("quantity") or 0)),
                "amount": _s(abs(total)),
            }
        )
    if not lines and payload.get("amount"):
        lines = []
    created = payload.get("date_created_gmt") or payload.get("date_created")
    if created and "+" not in created and not created.endswith("Z"):
        created += "+00:00"
    return {
        "refund_id": _s(payload.get("id")),
        "order_id": order_id or _s(payload.get("order_id")),
        "created_at": created,
        "kind": "return",
        "lines": lines,
    }


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


def _absolute(landing: Any) -> str | None:
    if not landing:
        return None
    text = str(landing)
    return text if text.startswith("http") else "https://shop.invalid" + (text if text.startswith("/") else "/" + text)

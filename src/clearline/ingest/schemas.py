"""Incoming orders and refunds: the postback format of INTERFACES §2–3, and Shopify and WooCommerce
payloads mapped onto it. Every bad field is named; money arrives as decimal strings, never floats."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from clearline.kit import money


class FieldProblems(ValueError):
    """Several bad fields found by one cross-field check, each with its own location."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        self.problems = problems


class MappingError(ValueError):
    """A Shopify or WooCommerce payload field that cannot be read (named by its place in that payload)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _decimal_string(value: Any) -> Any:
    # An integer is a JSON number too: accepting 19 but not 19.99 would teach senders the wrong habit.
    if isinstance(value, bool | float | int):
        raise ValueError('money must be a decimal string such as "19.99", not a JSON number')
    if isinstance(value, str):
        try:
            return money.parse_decimal(value)
        except money.MoneyError as exc:
            raise ValueError(str(exc)) from None
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")  # (PostgreSQL text cannot hold one: a 500 otherwise)
    return value


# An order's or refund's id at its source: the inbox's key.
EventId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_nul)]


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
    order_id: EventId
    created_at: dt.datetime
    currency: str
    customer: CustomerIn | None = None
    click_id: str | None = Field(default=None, max_length=64)  # the orders.click_id column
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
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:  # 9999-12-31T23:00:00-05:00 is past the last UTC datetime
            raise ValueError("out of range once in UTC") from None

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
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, line in enumerate(self.lines):
            for name in ("unit_price", "discount"):
                value = getattr(line, name)
                if money.round_half_up(value, self.currency) != value:
                    problems.append((("lines", index, name), f"more digits than {self.currency} allows"))
            if line.discount > line.unit_price * line.quantity:
                problems.append((("lines", index, "discount"), "larger than quantity × unit_price"))
        for name in ("shipping", "tax"):
            value = getattr(self, name)
            if money.round_half_up(value, self.currency) != value:
                problems.append(((name,), f"more digits than {self.currency} allows"))
        if problems:
            raise FieldProblems(problems)
        return self


class RefundLineIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=0, ge=0)
    amount: Money


class RefundIn(_In):
    refund_id: EventId
    order_id: EventId
    created_at: dt.datetime
    kind: Literal["return", "chargeback"] = "return"
    lines: list[RefundLineIn] = Field(min_length=1)

    _aware = field_validator("created_at")(OrderIn._aware.__func__)  # type: ignore[attr-defined]


class PlatformRefundIn(RefundIn):
    """A Shopify or WooCommerce refund may refund no line at all (shipping only, a goodwill amount, or what
    is left after every line was refunded): it is recorded and reverses nothing. Refusing it would make the
    platform retry for days and then drop the webhook subscription."""

    lines: list[RefundLineIn] = Field(default_factory=list)


# --- Shopify and WooCommerce -----------------------------------------------------------------------
# These map a platform's own JSON onto the postback shape; OrderIn / RefundIn then validate it. A value
# the mapping itself must compute with (a sum, a division) is read here and named by its platform path.


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = payload.get(key) or []
    if not isinstance(items, list):
        raise MappingError((key,), "must be a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MappingError((key, index), "must be an object")
    return items


def _dec(value: Any, loc: tuple[str | int, ...]) -> Decimal:
    """A platform amount: decimal strings, or the JSON numbers some platforms send (read via their text)."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise MappingError(loc, f"{value!r} is not an amount")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(loc, f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise MappingError(loc, f"{value!r} is not a finite number")
    return result


def _int(value: Any, loc: tuple[str | int, ...]) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise MappingError(loc, f"{value!r} is not a whole number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(loc, f"{value!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise MappingError(loc, f"{value!r} is not a whole number")
    return int(number)


def _text(value: Decimal) -> str:
    return format(value, "f")


def utc_text(value: Any) -> Any:
    """WooCommerce's *_gmt times carry no offset; they are UTC."""
    if isinstance(value, str) and value and "+" not in value and not value.endswith("Z"):
        return value + "+00:00"
    return value


def _shopify_line_key(item: dict[str, Any]) -> str:
    """The SKU, else the variant id, else the line id: an order line and its refund line must agree."""
    return _s(item.get("sku")) or _s(item.get("variant_id") or item.get("id"))


def shopify_order(payload: dict[str, Any]) -> dict[str, Any]:
    """Shopify's order JSON (as its orders/create webhook sends it) in the postback shape."""
    customer = _obj(payload.get("customer"))
    email = _s(payload.get("email") or customer.get("email"))
    lines = []
    for index, item in enumerate(_items(payload, "line_items")):
        discount = _dec(item.get("total_discount"), ("line_items", index, "total_discount"))
        # Newer payloads put code discounts in discount_allocations and may leave total_discount at 0;
        # taking the larger never counts one discount twice.
        allocations = _items(item, "discount_allocations")
        allocated = sum(
            (
                _dec(a.get("amount"), ("line_items", index, "discount_allocations", n, "amount"))
                for n, a in enumerate(allocations)
            ),
            Decimal(0),
        )
        lines.append(
            {
                "sku": _shopify_line_key(item),
                "quantity": item.get("quantity"),
                "unit_price": _s(item.get("price")),
                "discount": _text(max(discount, allocated)),
            }
        )
    orders_count = customer.get("orders_count")
    shipping = sum(
        (_dec(x.get("price"), ("shipping_lines", n, "price")) for n, x in enumerate(_items(payload, "shipping_lines"))),
        Decimal(0),
    )
    return {
        "order_id": _s(payload.get("id")),
        "created_at": payload.get("created_at"),
        "currency": payload.get("currency"),
        "customer": {
            "id": _s(customer.get("id")) or None,
            "email_sha256": _sha256(email) if email else None,
            "new_customer": None if orders_count is None else _int(orders_count, ("customer", "orders_count")) <= 1,
        },
        "coupon_codes": [_s(d.get("code")) for d in _items(payload, "discount_codes") if d.get("code")],
        "landing_url": _absolute(payload.get("landing_site")),
        "lines": lines,
        "shipping": _text(shipping),
        "tax": _s(payload.get("total_tax") or "0"),
        "ip": payload.get("browser_ip"),
        "user_agent": _obj(payload.get("client_details")).get("user_agent"),
    }


def shopify_refund(payload: dict[str, Any]) -> dict[str, Any]:
    """Shopify's refund JSON (refunds/create): one refund line per refunded line item."""
    lines = []
    for index, item in enumerate(_items(payload, "refund_line_items")):
        line_item = _obj(item.get("line_item"))
        quantity = _int(item.get("quantity"), ("refund_line_items", index, "quantity"))
        shop_money = _obj(_obj(item.get("subtotal_set")).get("shop_money"))
        if shop_money.get("amount") is not None:
            amount = _dec(shop_money["amount"], ("refund_line_items", index, "subtotal_set", "shop_money", "amount"))
        elif item.get("subtotal") is not None:
            amount = _dec(item["subtotal"], ("refund_line_items", index, "subtotal"))
        else:
            amount = _dec(line_item.get("price"), ("refund_line_items", index, "line_item", "price")) * quantity
        key = _shopify_line_key(line_item) if line_item else _s(item.get("line_item_id"))
        lines.append({"sku": key, "quantity": quantity, "amount": _text(amount)})
    return {
        "refund_id": _s(payload.get("id")),
        "order_id": _s(payload.get("order_id")),
        "created_at": payload.get("created_at"),
        "kind": "return",
        "lines": lines,
    }


def woocommerce_order(payload: dict[str, Any]) -> dict[str, Any]:
    """WooCommerce's order JSON (order.created / order.updated) in the postback shape."""
    billing = _obj(payload.get("billing"))
    try:
        digits = money.exponent(_s(payload.get("currency")))
    except money.MoneyError:
        digits = 2  # OrderIn names the bad currency; the lines are still mapped so it can name theirs too
    quantum = Decimal(1).scaleb(-digits)
    lines = []
    for index, item in enumerate(_items(payload, "line_items")):
        quantity = _int(item.get("quantity"), ("line_items", index, "quantity"))
        subtotal = _dec(item.get("subtotal"), ("line_items", index, "subtotal"))
        total = _dec(item.get("total"), ("line_items", index, "total"))
        # WooCommerce gives line totals, not a unit price: 10.00 for 3 units is 3.34 each less 0.02, so the
        # line's net revenue stays exactly its `total`.
        unit = (subtotal / quantity).quantize(quantum, rounding=ROUND_CEILING) if quantity > 0 else subtotal
        lines.append(
            {
                "sku": _s(item.get("sku")) or _s(item.get("product_id")),
                "quantity": quantity,
                "unit_price": _text(unit),
                "discount": _text(unit * quantity - total) if quantity > 0 else _text(subtotal - total),
            }
        )
    meta = {m.get("key"): m.get("value") for m in payload.get("meta_data") or [] if isinstance(m, dict)}
    email = _s(billing.get("email"))
    customer_id = _s(payload.get("customer_id"))
    return {
        "order_id": _s(payload.get("id")),
        "created_at": utc_text(payload.get("date_created_gmt")) or payload.get("date_created"),
        "currency": payload.get("currency"),
        "customer": {
            "id": None if customer_id in ("", "0") else customer_id,  # 0 is WooCommerce's guest checkout
            "email_sha256": _sha256(email) if email else None,
        },
        "coupon_codes": [_s(c.get("code")) for c in _items(payload, "coupon_lines") if c.get("code")],
        "landing_url": meta.get("_clearline_landing_url") or meta.get("landing_url"),
        "click_id": meta.get("_clearline_clid") or meta.get("clid"),
        "lines": lines,
        "shipping": _s(payload.get("shipping_total") or "0"),
        "tax": _s(payload.get("total_tax") or "0"),
        "ip": payload.get("customer_ip_address"),
        "user_agent": payload.get("customer_user_agent"),
    }


def woocommerce_refund(payload: dict[str, Any], *, order_id: str | None = None) -> dict[str, Any]:
    """A WooCommerce refund resource (line totals are negative there) in the postback shape."""
    lines = []
    for index, item in enumerate(_items(payload, "line_items")):
        total = _dec(item.get("total"), ("line_items", index, "total"))
        quantity = _int(item.get("quantity"), ("line_items", index, "quantity"))
        lines.append(
            {
                "sku": _s(item.get("sku")) or _s(item.get("product_id")),
                "quantity": abs(quantity),
                "amount": _text(abs(total)),
            }
        )
    return {
        "refund_id": _s(payload.get("id")),
        "order_id": order_id or _s(payload.get("order_id")),
        "created_at": utc_text(payload.get("date_created_gmt")) or payload.get("date_created"),
        "kind": "return",
        "lines": lines,
    }


def woocommerce_refund_resource(
    *, refund_id: str, order_id: str, created_at: str, currency: str, shares: list[tuple[str, int]]
) -> dict[str, Any]:
    """A WooCommerce order lists its refunds as order-level totals only; once they are spread over the
    lines, they are kept in WooCommerce's own refund shape so a replay reads them like any refund."""
    return {
        "id": refund_id,
        "order_id": order_id,
        "date_created_gmt": created_at,
        "line_items": [
            {"sku": sku, "quantity": 0, "total": "-" + money.format_minor(share, currency)}
            for sku, share in shares
            if share
        ],
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


def _absolute(landing: Any) -> str | None:
    if not landing:
        return None
    text = str(landing)
    return text if text.startswith("http") else "https://shop.invalid" + (text if text.startswith("/") else "/" + text)

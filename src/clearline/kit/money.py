"""Money: Decimal arithmetic, integer minor units, one half-up rounding rule.

This module is the one place that knows each currency's minor unit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies Clearline accepts.
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "MXN": 2,
    "BRL": 2,
    "INR": 2,
    "SGD": 2,
    "HKD": 2,
    "ZAR": 2,
    "CNY": 2,
    "ILS": 2,
    "AED": 2,
    "TRY": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


# Each currency's smallest unit as a Decimal quantum (0.01 for USD), made once: rounding is on every hot path.
_QUANTA: dict[str, Decimal] = {code: Decimal(1).scaleb(-digits) for code, digits in MINOR_UNITS.items()}


class MoneyError(ValueError):
    pass


def check_currency(currency: str) -> str:
    code = (currency or "").upper()
    if code not in MINOR_UNITS:
        raise MoneyError(f"unknown currency {currency!r}")
    return code


def exponent(currency: str) -> int:
    digits = MINOR_UNITS.get(currency)  # the usual case: a code already checked and upper-case
    return digits if digits is not None else MINOR_UNITS[check_currency(currency)]


def parse_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Parse a decimal string (never a float) into a finite Decimal."""
    if isinstance(value, float):
        raise MoneyError(f"{field}: money must be a decimal string, not a float")
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise MoneyError(f"{field}: {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not a finite number")
    return result


def round_half_up(amount: Decimal, currency: str) -> Decimal:
    quantum = _QUANTA.get(currency) or _QUANTA[check_currency(currency)]
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    """Round half-up once to the currency's minor unit and return integer minor units."""
    return int(round_half_up(amount, currency).scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_minor(minor: int, currency: str) -> str:
    """Render minor units with exactly the currency's digits, e.g. 1999 USD -> '19.99'."""
    digits = exponent(currency)
    value = from_minor(minor, currency)
    return f"{value:.{digits}f}"


def parse_to_minor(value: object, currency: str, *, field: str = "amount") -> int:
    """Parse a decimal string that must already be exact in the currency's minor unit."""
    amount = parse_decimal(value, field=field)
    minor = amount.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise MoneyError(f"{field}: {value!r} has more digits than {currency.upper()} allows")
    return int(minor)


def round_units(value: Decimal) -> int:
    """Round an amount already expressed in minor units, half-up, to a whole number of them."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

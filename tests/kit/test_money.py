"""kit.money: Decimal in, integer minor units out, one half-up rounding rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearline.kit import money

CURRENCIES = st.sampled_from(sorted(money.MINOR_UNITS))
MINOR = st.integers(min_value=-(10**15), max_value=10**15)
AMOUNTS = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False)


class TestToMinor:
    @given(minor=MINOR, currency=CURRENCIES)
    def test_from_minor_then_to_minor_gives_back_the_same_integer(self, minor: int, currency: str) -> None:
        assert money.to_minor(money.from_minor(minor, currency), currency) == minor

    @given(amount=AMOUNTS, currency=CURRENCIES)
    def test_the_result_is_within_half_a_minor_unit_of_the_amount(self, amount: Decimal, currency: str) -> None:
        unit = Decimal(1).scaleb(-money.exponent(currency))
        rounded = money.from_minor(money.to_minor(amount, currency), currency)
        assert abs(rounded - amount) <= unit / 2

    @given(amount=AMOUNTS, currency=CURRENCIES)
    def test_rounding_twice_changes_nothing(self, amount: Decimal, currency: str) -> None:
        once = money.round_half_up(amount, currency)
        assert money.round_half_up(once, currency) == once
        assert money.to_minor(once, currency) == money.to_minor(amount, currency)

    @given(whole=st.integers(min_value=0, max_value=10**9), currency=CURRENCIES)
    def test_an_exact_half_rounds_up_away_from_zero(self, whole: int, currency: str) -> None:
        unit = Decimal(1).scaleb(-money.exponent(currency))
        half = money.from_minor(whole, currency) + unit / 2
        assert money.to_minor(half, currency) == whole + 1
        assert money.to_minor(-half, currency) == -(whole + 1)

    @given(whole=st.integers(min_value=0, max_value=10**9), currency=CURRENCIES)
    def test_just_below_a_half_rounds_down(self, whole: int, currency: str) -> None:
        unit = Decimal(1).scaleb(-money.exponent(currency))
        below = money.from_minor(whole, currency) + unit / 2 - unit / 1000
        assert money.to_minor(below, currency) == whole

    @pytest.mark.parametrize(
        ("amount", "currency", "minor"),
        [
            ("0.005", "USD", 1),
            ("0.004999", "USD", 0),
            ("2.675", "EUR", 268),
            ("-0.005", "USD", -1),
            ("0.5", "JPY", 1),
            ("1.4999", "JPY", 1),
            ("0.0005", "KWD", 1),
            ("19.99", "usd", 1999),
        ],
    )
    def test_known_amounts_round_half_up(self, amount: str, currency: str, minor: int) -> None:
        assert money.to_minor(Decimal(amount), currency) == minor

    def test_an_unknown_currency_is_refused(self) -> None:
        with pytest.raises(money.MoneyError, match="unknown currency 'XXX'"):
            money.to_minor(Decimal("1.00"), "XXX")


class TestFormatMinor:
    @pytest.mark.parametrize(
        ("minor", "currency", "text"),
        [
            (1999, "USD", "19.99"),
            (5, "USD", "0.05"),
            (-150, "EUR", "-1.50"),
            (1500, "JPY", "1500"),
            (1, "BHD", "0.001"),
        ],
    )
    def test_renders_exactly_the_currencys_digits(self, minor: int, currency: str, text: str) -> None:
        assert money.format_minor(minor, currency) == text

    @given(minor=MINOR, currency=CURRENCIES)
    def test_the_text_parses_back_to_the_same_minor_units(self, minor: int, currency: str) -> None:
        assert money.parse_to_minor(money.format_minor(minor, currency), currency) == minor


class TestParseDecimal:
    def test_a_float_is_refused_naming_the_field(self) -> None:
        with pytest.raises(money.MoneyError, match="^price: money must be a decimal string"):
            money.parse_decimal(19.99, field="price")

    @pytest.mark.parametrize("text", ["abc", "", "1,5", "NaN", "Infinity"])
    def test_text_that_is_not_a_finite_number_is_refused(self, text: str) -> None:
        with pytest.raises(money.MoneyError, match="^amount: "):
            money.parse_decimal(text)

    def test_surrounding_spaces_are_ignored(self) -> None:
        assert money.parse_decimal(" 4.20 ") == Decimal("4.20")


class TestParseToMinor:
    def test_an_exact_amount_becomes_minor_units(self) -> None:
        assert money.parse_to_minor("19.99", "USD") == 1999

    def test_more_digits_than_the_currency_has_are_refused_not_rounded(self) -> None:
        with pytest.raises(money.MoneyError, match="unit_price: '19.999' has more digits than USD allows"):
            money.parse_to_minor("19.999", "USD", field="unit_price")

    def test_trailing_zeros_beyond_the_minor_unit_are_exact(self) -> None:
        assert money.parse_to_minor("5.000", "JPY") == 5

"""link.utm: GA4-style UTM templates — validated before they are stored, rendered lowercase and slugged."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearline.link import utm

SAFE_VALUE = re.compile(r"[a-z0-9_.-]*")
VALID = {"utm_source": "{channel}", "utm_medium": "affiliate", "utm_campaign": "{campaign}"}
VALUES = {
    "brand": "acme",
    "channel": "instagram",
    "campaign": "spring-drop",
    "campaign_id": "42",
    "creator": "anna.glow",
    "sku": "SKU-A1",
}


def refused(params: dict[str, str]) -> utm.TemplateError:
    with pytest.raises(utm.TemplateError) as caught:
        utm.validate_template(params)
    return caught.value


class TestValidateTemplate:
    def test_a_template_of_known_parameters_and_placeholders_is_kept_as_given(self) -> None:
        params = {**VALID, "utm_content": "{brand}-{creator}", "utm_id": "{campaign_id}", "utm_term": "{sku}"}
        assert utm.validate_template(params) == params

    def test_the_default_template_is_valid(self) -> None:
        assert utm.validate_template(dict(utm.DEFAULT_TEMPLATE)) == utm.DEFAULT_TEMPLATE

    def test_an_unknown_parameter_is_refused_by_name(self) -> None:
        error = refused({**VALID, "utm_creator": "{creator}"})
        assert error.param == "utm_creator"
        assert "unknown parameter" in error.message

    def test_an_unknown_placeholder_is_refused_and_named(self) -> None:
        error = refused({**VALID, "utm_content": "{creator}-{email}"})
        assert error.param == "utm_content"
        assert "{email}" in error.message

    @pytest.mark.parametrize("pattern", ["{}", "{0}", "{creator.__class__}", "{creator[0]}"])
    def test_positional_and_attribute_placeholders_are_refused(self, pattern: str) -> None:
        assert refused({**VALID, "utm_content": pattern}).param == "utm_content"

    @pytest.mark.parametrize("pattern", ["Affiliate", "AFFILIATE-{channel}", "{channel}_Paid"])
    def test_an_uppercase_literal_is_refused(self, pattern: str) -> None:
        error = refused({**VALID, "utm_medium": pattern})
        assert error.param == "utm_medium"
        assert "lowercase" in error.message

    @pytest.mark.parametrize("pattern", ["paid social", "affiliate/creator", "affiliate\n", "caf\u00e9"])
    def test_a_literal_outside_the_ga4_safe_characters_is_refused(self, pattern: str) -> None:
        assert refused({**VALID, "utm_medium": pattern}).param == "utm_medium"

    @pytest.mark.parametrize("required", ["utm_source", "utm_medium", "utm_campaign"])
    def test_source_medium_and_campaign_are_required(self, required: str) -> None:
        params = {name: value for name, value in VALID.items() if name != required}
        error = refused(params)
        assert (error.param, error.message) == (required, "required")

    def test_an_empty_required_parameter_counts_as_missing(self) -> None:
        assert refused({**VALID, "utm_campaign": ""}).param == "utm_campaign"

    @pytest.mark.parametrize("pattern", ["{channel", "channel}", "{channel}}"])
    def test_unbalanced_braces_are_a_template_error_not_a_crash(self, pattern: str) -> None:
        assert refused({**VALID, "utm_source": pattern}).param == "utm_source"

    @pytest.mark.parametrize("pattern", ["{creator!r}", "{creator:>40}", "{creator:x>999999999}"])
    def test_conversions_and_format_specs_are_refused(self, pattern: str) -> None:
        error = refused({**VALID, "utm_content": pattern})
        assert error.param == "utm_content"


class TestRender:
    def test_the_ga4_defaults_carry_channel_campaign_creator_campaign_id_and_sku(self) -> None:
        assert utm.render(utm.DEFAULT_TEMPLATE, **VALUES) == {
            "utm_source": "instagram",
            "utm_medium": "affiliate",
            "utm_campaign": "spring-drop",
            "utm_content": "anna.glow",
            "utm_id": "42",
            "utm_term": "sku-a1",
        }

    def test_values_are_lowercased_and_slugged(self) -> None:
        rendered = utm.render(
            {"utm_source": "{channel}", "utm_campaign": "{brand}_{campaign}"},
            channel="  Instagram Reels ",
            brand="ACME",
            campaign="Spring Drop / 2026!",
        )
        assert rendered == {"utm_source": "instagram-reels", "utm_campaign": "acme_spring-drop-2026"}

    def test_an_empty_parameter_is_left_out(self) -> None:
        rendered = utm.render(utm.DEFAULT_TEMPLATE, **{**VALUES, "sku": ""})
        assert "utm_term" not in rendered
        assert rendered["utm_medium"] == "affiliate"

    def test_a_missing_value_renders_as_empty(self) -> None:
        assert utm.render({"utm_source": "{channel}", "utm_id": "{campaign_id}"}, channel="tiktok") == {
            "utm_source": "tiktok"
        }

    @given(
        values=st.fixed_dictionaries({key: st.text(max_size=40) for key in sorted(utm.PLACEHOLDERS)}),
        literal=st.from_regex(r"[a-z0-9_.-]{0,8}", fullmatch=True),
        fields=st.lists(st.sampled_from(sorted(utm.PLACEHOLDERS)), min_size=1, max_size=3),
    )
    def test_rendered_values_are_always_lowercase_url_safe_slugs(
        self, values: dict[str, str], literal: str, fields: list[str]
    ) -> None:
        template = {**utm.DEFAULT_TEMPLATE, "utm_content": literal + "".join(f"{{{name}}}" for name in fields)}
        for value in utm.render(utm.validate_template(template), **values).values():
            assert SAFE_VALUE.fullmatch(value), value


class TestWithParams:
    def test_parameters_are_appended_to_a_url_without_a_query(self) -> None:
        assert utm.with_params("https://shop.example.com/p/1", {"utm_source": "ig"}) == (
            "https://shop.example.com/p/1?utm_source=ig"
        )

    def test_existing_query_parameters_and_the_fragment_are_kept(self) -> None:
        url = utm.with_params(
            "https://shop.example.com/p/1?color=red&size=m#reviews", {"utm_source": "ig", "utm_medium": "affiliate"}
        )
        parts = urlsplit(url)
        assert parse_qsl(parts.query) == [
            ("color", "red"),
            ("size", "m"),
            ("utm_source", "ig"),
            ("utm_medium", "affiliate"),
        ]
        assert parts.fragment == "reviews"

    def test_an_existing_parameter_of_the_same_name_is_replaced_not_duplicated(self) -> None:
        url = utm.with_params("https://shop.example.com/?utm_source=old&ref=home", {"utm_source": "ig"})
        assert parse_qsl(urlsplit(url).query) == [("ref", "home"), ("utm_source", "ig")]

    def test_untouched_query_parameters_keep_their_exact_encoding(self) -> None:
        url = utm.with_params("https://shop.example.com/s?q=a%20b&next=%2Fcart&preview", {"utm_id": "7"})
        assert url == "https://shop.example.com/s?q=a%20b&next=%2Fcart&preview&utm_id=7"

    def test_no_parameters_leave_the_url_unchanged(self) -> None:
        url = "https://shop.example.com/p?x=1#top"
        assert utm.with_params(url, {}) == url

"""UTM templates following GA4's conventions: lowercase values, utm_medium=affiliate by default."""

from __future__ import annotations

import re
import string
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

PLACEHOLDERS = frozenset({"brand", "channel", "campaign", "campaign_id", "creator", "sku"})
PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_id", "utm_term")
DEFAULT_TEMPLATE: dict[str, str] = {
    "utm_source": "{channel}",
    "utm_medium": "affiliate",  # GA4 files this under its Affiliates channel
    "utm_campaign": "{campaign}",
    "utm_content": "{creator}",
    "utm_id": "{campaign_id}",
    "utm_term": "{sku}",
}
_VALUE = re.compile(r"[a-z0-9_.\-]*")


class TemplateError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def validate_template(params: dict[str, str]) -> dict[str, str]:
    """Known parameters, known placeholders, literal parts lowercase; utm_source/medium/campaign required."""
    cleaned: dict[str, str] = {}
    for name, pattern in params.items():
        if name not in PARAMS:
            raise TemplateError(name, f"unknown parameter (allowed: {', '.join(PARAMS)})")
        try:
            pieces = list(string.Formatter().parse(pattern))
        except ValueError as exc:
            raise TemplateError(name, f"malformed placeholder: {exc}") from None
        for _, field, spec, conversion in pieces:
            if field is None:
                continue
            if field not in PLACEHOLDERS:
                raise TemplateError(name, f"unknown placeholder {{{field}}}")
            # A format spec such as {creator:x>999999999} would let a template allocate without bound.
            if spec or conversion:
                raise TemplateError(name, f"placeholder {{{field}}} takes no conversion or format spec")
        literal = "".join(text for text, *_ in pieces)
        if not _VALUE.fullmatch(literal):
            raise TemplateError(name, "literal text must be lowercase letters, digits, '_', '-' or '.'")
        cleaned[name] = pattern
    for required in ("utm_source", "utm_medium", "utm_campaign"):
        if not cleaned.get(required):
            raise TemplateError(required, "required")
    return cleaned


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9_.\-]+", "-", value.strip().lower()).strip("-")


def render(template: dict[str, str], **values: str) -> dict[str, str]:
    """Fill the template; every value lowercased and slugged; empty parameters are dropped."""
    context = {key: _slug(str(values.get(key, ""))) for key in PLACEHOLDERS}
    rendered = {name: _slug(pattern.format(**context)) for name, pattern in template.items()}
    return {name: value for name, value in rendered.items() if value}


def with_params(url: str, params: dict[str, str]) -> str:
    """Append parameters to a URL, keeping the query it already has (existing keys are not duplicated).

    Untouched parameters keep their exact bytes: a storefront may read ``?preview`` or ``q=a%20b``
    differently from a re-encoded ``preview=`` or ``q=a+b``.
    """
    if not params:
        return url
    parts = urlsplit(url)
    kept = [piece for piece in parts.query.split("&") if piece and unquote_plus(piece.partition("=")[0]) not in params]
    query = "&".join([*kept, urlencode(list(params.items()))])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

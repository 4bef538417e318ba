from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clearline.kit.money import check_currency


def clean_domains(domains: list[str]) -> list[str]:
    """Landing domains are bare host names; a link may point at one of them or a subdomain."""
    cleaned = []
    for domain in domains:
        domain = domain.strip().lower()
        if not domain or "/" in domain or ":" in domain or " " in domain or "." not in domain:
            raise ValueError(f"{domain!r} is not a bare host name")
        cleaned.append(domain)
    return cleaned


class BrandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    default_currency: str = "USD"
    allowed_domains: list[str] = Field(default_factory=list)
    gl_account: str = Field(default="", max_length=40)
    cost_center: str = Field(default="", max_length=40)

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        return clean_domains(domains)


class BrandUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    allowed_domains: list[str] | None = None
    gl_account: str | None = Field(default=None, max_length=40)
    cost_center: str | None = Field(default=None, max_length=40)
    reason: str = ""

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: list[str] | None) -> list[str] | None:
        return None if domains is None else clean_domains(domains)


class BrandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    default_currency: str
    allowed_domains: list[str]
    gl_account: str
    cost_center: str
    created_at: dt.datetime

"""Matrix rows for the foundation's routes: users and keys, brands, catalog, creators, contracts, audit."""

from __future__ import annotations

from tests import factories
from tests.auth.matrix import (
    CONTRACT_READERS,
    END,
    EVERYONE,
    PARTIES,
    STAFF,
    START,
    V1,
    Call,
    Endpoint,
    csv_file,
    ids,
    row,
)

TERMS = factories.CPA_TERMS
WINDOW = {"starts_at": START.isoformat(), "ends_at": END.isoformat()}
_e = row


FOUNDATION: list[Endpoint] = [
    # Public documentation of the API.
    _e("GET", "/openapi.json", lambda s, c: Call(f"{V1}/openapi.json"), EVERYONE, public=True),
    _e("GET", "/docs", lambda s, c: Call(f"{V1}/docs"), EVERYONE, public=True),
    # Users and API keys.
    _e("GET", "/me", lambda s, c: Call(f"{V1}/me"), EVERYONE, foreign="self"),
    _e(
        "POST",
        "/users",
        lambda s, c: Call(
            f"{V1}/users",
            json={
                "email": "new.user@example.com",
                "name": "New",
                "grants": [{"role": "finance", "brand_id": s.brand.id}],
            },
        ),
        frozenset({"admin"}),
        ok=201,
        everywhere=True,
        foreign=403,
    ),
    _e(
        "POST",
        "/users/{user_id}/grants",
        lambda s, c: Call(f"{V1}/users/{s.staff_user.id}/grants", json={"role": "finance", "brand_id": s.brand.id}),
        frozenset({"admin"}),
        ok=201,
        everywhere=True,
        foreign=403,
    ),
    _e(
        "POST",
        "/api-keys",
        lambda s, c: Call(f"{V1}/api-keys", json={"name": "mine"}),
        EVERYONE,
        ok=201,
        foreign="self",
    ),
    _e("GET", "/api-keys", lambda s, c: Call(f"{V1}/api-keys"), EVERYONE, foreign="self"),
    _e(
        "DELETE",
        "/api-keys/{key_id}",
        lambda s, c: Call(f"{V1}/api-keys/{c.key_id}"),
        EVERYONE,
        foreign_request=lambda s, c: Call(f"{V1}/api-keys/{s.staff_key_id}"),
    ),
    # Brands.
    _e(
        "GET",
        "/brands",
        lambda s, c: Call(f"{V1}/brands"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.brand.id},
    ),
    _e(
        "POST",
        "/brands",
        lambda s, c: Call(f"{V1}/brands", json={"slug": "new-brand", "name": "New brand"}),
        frozenset({"admin"}),
        ok=201,
        everywhere=True,
        foreign=403,
    ),
    _e("GET", "/brands/{brand_id}", lambda s, c: Call(f"{V1}/brands/{s.brand.id}"), EVERYONE),
    _e(
        "PATCH",
        "/brands/{brand_id}",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}", json={"name": "Renamed", "reason": "rebrand"}),
        frozenset({"admin"}),
    ),
    # Campaigns.
    _e("GET", "/brands/{brand_id}/campaigns", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/campaigns"), EVERYONE),
    _e(
        "POST",
        "/brands/{brand_id}/campaigns",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/campaigns",
            json={
                "slug": "spring",
                "name": "Spring",
                "payment_model": "cpa",
                "fallback_url": "https://shop.example.com/spring",
                **WINDOW,
            },
        ),
        frozenset({"admin", "marketing"}),
        ok=201,
    ),
    _e("GET", "/campaigns/{campaign_id}", lambda s, c: Call(f"{V1}/campaigns/{s.campaign.id}"), STAFF, readers=STAFF),
    # Catalog.
    _e("GET", "/brands/{brand_id}/skus", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/skus"), STAFF),
    _e(
        "POST",
        "/brands/{brand_id}/skus/import",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/skus/import", files=csv_file(factories.SKU_CSV)),
        frozenset({"admin", "brand_ops"}),
    ),
    _e("GET", "/brands/{brand_id}/offers", lambda s, c: Call(f"{V1}/brands/{s.brand.id}/offers"), EVERYONE),
    _e(
        "POST",
        "/brands/{brand_id}/offers",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/offers",
            json={"code": "NEW10", "name": "New customers", "eligible_skus": ["SKU-A1"], **WINDOW},
        ),
        frozenset({"admin", "brand_ops", "brand_steward", "marketing"}),
        ok=201,
    ),
    _e(
        "POST",
        "/offers/{offer_id}/language-approval",
        lambda s, c: Call(
            f"{V1}/offers/{s.offer.id}/language-approval", json={"language": "10 % off your first order"}
        ),
        frozenset({"admin", "legal"}),
        readers=STAFF,
    ),
    # Creators and agencies.
    _e(
        "GET",
        "/creators",
        lambda s, c: Call(f"{V1}/creators"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.creator.id, s.spare_creator.id},
    ),
    _e(
        "GET",
        "/creators/{creator_id}",
        lambda s, c: Call(f"{V1}/creators/{s.creator.id}"),
        EVERYONE,
        readers=EVERYONE,
    ),
    _e(
        "POST",
        "/brands/{brand_id}/creators",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/creators", json={"handle": "brand_new", "name": "Brand New"}),
        frozenset({"admin", "social_ops", "marketing"}),
        ok=201,
    ),
    _e(
        "POST",
        "/brands/{brand_id}/creators/import",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/creators/import", files=csv_file("handle,name\nimported_one,One\n")
        ),
        frozenset({"admin", "social_ops", "marketing"}),
    ),
    _e(
        "GET",
        "/agencies",
        lambda s, c: Call(f"{V1}/agencies"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.agency.id},
    ),
    _e(
        "GET",
        "/agencies/{agency_id}",
        lambda s, c: Call(f"{V1}/agencies/{s.agency.id}"),
        STAFF | {"agency"},
        readers=STAFF | {"agency"},
    ),
    _e(
        "POST",
        "/brands/{brand_id}/agencies",
        lambda s, c: Call(f"{V1}/brands/{s.brand.id}/agencies", json={"name": "New agency"}),
        frozenset({"admin", "social_ops", "marketing"}),
        ok=201,
    ),
    _e(
        "POST",
        "/agencies/{agency_id}/roster/import",
        lambda s, c: Call(
            f"{V1}/agencies/{s.agency.id}/roster/import", files=csv_file(f"handle\n{s.spare_creator.handle}\n")
        ),
        frozenset({"admin", "social_ops", "marketing", "agency"}),
        readers=STAFF | {"agency"},
    ),
    # Contracts.
    _e(
        "GET",
        "/contract-templates",
        lambda s, c: Call(f"{V1}/contract-templates"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.template_id},
    ),
    _e(
        "POST",
        "/contract-templates",
        lambda s, c: Call(
            f"{V1}/contract-templates", json={"name": "Retainer", "brand_id": s.brand.id, "body": "Terms."}
        ),
        frozenset({"admin", "legal"}),
        ok=201,
    ),
    _e(
        "POST",
        "/contract-templates/{template_id}/versions",
        lambda s, c: Call(f"{V1}/contract-templates/{s.template_id}/versions", json={"body": "Terms, v2."}),
        frozenset({"admin", "legal"}),
        ok=201,
        readers=STAFF,
    ),
    _e(
        "GET",
        "/contracts",
        lambda s, c: Call(f"{V1}/contracts"),
        EVERYONE,
        foreign="list",
        listed=ids,
        owned=lambda s: {s.contract.id, s.agency_contract.id},
    ),
    _e(
        "GET",
        "/contracts/{contract_id}",
        lambda s, c: Call(f"{V1}/contracts/{s.contract.id}"),
        CONTRACT_READERS | PARTIES,
        readers=CONTRACT_READERS | PARTIES,
    ),
    _e(
        "POST",
        "/brands/{brand_id}/contracts",
        lambda s, c: Call(
            f"{V1}/brands/{s.brand.id}/contracts",
            json={
                "creator_id": s.spare_creator.id,
                "template_version_id": s.version_id,
                "terms": TERMS,
                "starts_at": START.isoformat(),
            },
        ),
        frozenset({"admin", "legal"}),
        ok=201,
    ),
    _e(
        "POST",
        "/contracts/{contract_id}/accept",
        lambda s, c: Call(f"{V1}/contracts/{s.contract.id}/accept"),
        frozenset({"creator"}),
        readers=CONTRACT_READERS | PARTIES,
    ),
    _e(
        "POST",
        "/contracts/{contract_id}/terminate",
        lambda s, c: Call(f"{V1}/contracts/{s.contract.id}/terminate", json={"reason": "campaign cancelled"}),
        frozenset({"admin", "legal"}),
        readers=CONTRACT_READERS | PARTIES,
    ),
    # Audit.
    _e(
        "GET",
        "/audit-events",
        lambda s, c: Call(f"{V1}/audit-events", params={"brand_id": s.brand.id}),
        frozenset({"admin"}),
        foreign=403,
    ),
    _e(
        "GET",
        "/audit/verify",
        lambda s, c: Call(f"{V1}/audit/verify"),
        frozenset({"admin"}),
        everywhere=True,
        foreign=403,
    ),
]

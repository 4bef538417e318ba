from tests import factories


def test_brand_is_listed_for_its_staff(client, db):
    brand = factories.brand(db)
    marketer = factories.user(db, ("marketing", brand.id))
    key = factories.api_key(db, marketer)
    answer = client.get("/api/v1/brands", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    assert [b["slug"] for b in answer.json()] == [brand.slug]

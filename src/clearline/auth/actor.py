"""Who is acting, with which roles on which brands; the policy checks every entry point uses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from clearline.kit.errors import ForbiddenError

STAFF_ROLES = frozenset(
    {"admin", "marketing", "legal", "social_ops", "finance", "brand_ops", "brand_steward"}
)
ALL = None  # a grant with brand None covers every brand


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str
    # role -> brand ids; None in the set means "every brand"
    grants: dict[str, frozenset[int | None]] = field(default_factory=dict)
    creator_id: int | None = None
    agency_id: int | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(user_id=None, label=label, grants={"admin": frozenset({ALL})})

    def has_role(self, role: str, brand_id: int | None = None) -> bool:
        brands = self.grants.get(role)
        if not brands:
            return False
        if ALL in brands:
            return True
        return brand_id is not None and brand_id in brands

    def has_any(self, roles: Iterable[str], brand_id: int | None = None) -> bool:
        return any(self.has_role(role, brand_id) for role in roles)

    def require(self, *roles: str, brand_id: int | None = None) -> None:
        """Admin passes every role check; otherwise one of ``roles`` on ``brand_id`` is needed."""
        if self.has_any((*roles, "admin"), brand_id):
            return
        where = f" on brand {brand_id}" if brand_id is not None else " on all brands"
        raise ForbiddenError(f"requires role {' or '.join(roles)}{where}")

    @property
    def is_admin(self) -> bool:
        return self.has_role("admin")

    @property
    def is_staff(self) -> bool:
        return any(role in STAFF_ROLES and brands for role, brands in self.grants.items())

    def brand_scope(self, roles: Iterable[str] | None = None) -> frozenset[int] | None:
        """Brands this actor may see through staff ``roles``; None means every brand."""
        wanted = set(roles or STAFF_ROLES) | {"admin"}
        scope: set[int] = set()
        for role, brands in self.grants.items():
            if role not in wanted:
                continue
            if ALL in brands:
                return None
            scope.update(b for b in brands if b is not None)
        return frozenset(scope)

    def sees_all_brands(self) -> bool:
        return self.brand_scope() is None

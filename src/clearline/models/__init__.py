"""Every model, imported so that Alembic and the metadata see all tables."""

from clearline.models.audit import AuditEvent, AuditHead
from clearline.models.brand import Brand
from clearline.models.brief import (
    ApprovalStep,
    Brief,
    BriefTemplate,
    Creative,
    CreativeVersion,
    ProofOfPosting,
    ScheduledPost,
)
from clearline.models.campaign import Campaign
from clearline.models.catalog import Offer, Sku
from clearline.models.commission import CommissionLine, LedgerAccount, LedgerEntry, LedgerPosting
from clearline.models.contract import Contract, ContractAcceptance, ContractTemplate, ContractTemplateVersion
from clearline.models.creator import Agency, Creator, RosterEntry
from clearline.models.ingest import BrandSecret, FxRate, InboxEvent, OrderFile
from clearline.models.link import (
    LINK_STATUSES,
    Click,
    CouponCode,
    Link,
    LinkChange,
    Notification,
    UtmTemplate,
)
from clearline.models.order import Attribution, Order, OrderLine, Refund
from clearline.models.payout import Dispute, PayoutItem, PayoutLine, PayoutRun, Reconciliation
from clearline.models.user import ROLES, ApiKey, RoleGrant, User, WebSession

__all__ = [
    "ApprovalStep",
    "Brief",
    "BriefTemplate",
    "Creative",
    "CreativeVersion",
    "ProofOfPosting",
    "ScheduledPost",
    "Dispute",
    "PayoutItem",
    "PayoutLine",
    "PayoutRun",
    "Reconciliation",
    "Attribution",
    "BrandSecret",
    "CommissionLine",
    "FxRate",
    "InboxEvent",
    "OrderFile",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerPosting",
    "Order",
    "OrderLine",
    "Refund",
    "LINK_STATUSES",
    "Click",
    "CouponCode",
    "Link",
    "LinkChange",
    "Notification",
    "UtmTemplate",
    "ROLES",
    "Agency",
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Brand",
    "Campaign",
    "Contract",
    "ContractAcceptance",
    "ContractTemplate",
    "ContractTemplateVersion",
    "Creator",
    "Offer",
    "RoleGrant",
    "RosterEntry",
    "Sku",
    "User",
    "WebSession",
]

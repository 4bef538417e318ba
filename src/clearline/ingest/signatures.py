"""Signature checks for incoming events; every comparison is constant-time."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.kit import sealing
from clearline.kit.clock import utcnow
from clearline.kit.errors import NotFoundError, UnauthenticatedError
from clearline.kit.sealing import UnreadableSecretError
from clearline.kit.signing import Hmac256
from clearline.models import BrandSecret

KINDS = ("postback", "shopify", "woocommerce")
TOLERANCE_SECONDS = 300
# One answer for every refusal, an unknown brand included: the reason would tell a stranger which brand
# slugs exist (a stale timestamp is only checked for a real brand). The reason goes to the log instead.
REFUSED = "bad or missing webhook signature, or a timestamp more than 300 s off"

log = logging.getLogger(__name__)


def refused(reason: str) -> UnauthenticatedError:
    log.info("incoming event refused: %s", reason)
    return UnauthenticatedError(REFUSED)


def new_postback_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _context(brand_id: int, kind: str) -> str:
    # What a sealed secret is bound to: a value copied to another brand's or channel's row does not open.
    return f"brand_secrets brand={brand_id} kind={kind}"


def seal_secret(secret: str, *, brand_id: int, kind: str, key: bytes | None = None) -> str:
    """What `brand_secrets.sealed_secret` stores for ``secret`` (AES-GCM under the data key)."""
    return sealing.seal(secret, context=_context(brand_id, kind), key=key)


def open_secret(sealed: str, *, brand_id: int, kind: str, key: bytes | None = None) -> str:
    """A stored secret in clear; `UnreadableSecretError` under a wrong data key, or when the value was altered
    or belongs to another brand or channel."""
    return sealing.unseal(sealed, context=_context(brand_id, kind), key=key)


_reported: set[tuple[int, str]] = set()


def open_or_skip(row_id: int, sealed: str, *, brand_id: int, kind: str) -> str | None:
    """`open_secret`, or None (logged as an error) for a secret that does not open: it verifies nothing, and one
    bad row must not take the brand's other secrets, or other brands', down with it."""
    try:
        return open_secret(sealed, brand_id=brand_id, kind=kind)
    except UnreadableSecretError as exc:
        if (row_id, sealed) not in _reported:  # the postback keys are reloaded every second: say it once
            if len(_reported) > 10_000:
                _reported.clear()
            _reported.add((row_id, sealed))
            log.error("brand secret %s left out: %s", row_id, exc.message)
        return None


def valid_secrets(session: Session, *, brand_id: int, kind: str, now: dt.datetime | None = None) -> list[str]:
    """The brand's current secret and any old one still inside its rotation grace period, in clear (one that
    does not decrypt is left out and logged)."""
    now = now or utcnow()
    stmt = (
        select(BrandSecret.id, BrandSecret.sealed_secret)
        .where(
            BrandSecret.brand_id == brand_id,
            BrandSecret.kind == kind,
            or_(BrandSecret.expires_at.is_(None), BrandSecret.expires_at > now),
        )
        .order_by(BrandSecret.id.desc())
    )
    found = (open_or_skip(row_id, sealed, brand_id=brand_id, kind=kind) for row_id, sealed in session.execute(stmt))
    return [secret for secret in found if secret is not None]


def _secret_bytes(secret: str) -> bytes | None:
    text = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(text + "==")
    except ValueError:
        return None


def signing_key(secret: str) -> Hmac256 | None:
    """A Standard Webhooks secret ready to sign (its key's padding hashed once, not per request); None for a
    secret that is not base64."""
    key = _secret_bytes(secret)
    return Hmac256(key) if key else None


def verify_standard_webhook(
    secrets_: list[str], body: bytes, headers: dict[str, str], *, now: dt.datetime | None = None
) -> None:
    """Standard Webhooks: HMAC-SHA256 over "<id>.<timestamp>.<body>", timestamp within 300 s of our clock."""
    lowered = {k.lower(): v for k, v in headers.items()}
    keys = [key for secret in secrets_ if (key := signing_key(secret)) is not None]
    check_standard_webhook(keys, body, lowered, now=now)


def check_standard_webhook(
    keys: Sequence[Hmac256], body: bytes, headers: dict[str, str], *, now: dt.datetime | None = None
) -> None:
    """`verify_standard_webhook` with the secrets already made `signing_key`s and the header names already
    lowercase (as ASGI and the HTTP protocol give them).

    The signature header is a space-separated list (several during a rotation); an entry that is not
    `v1,<base64>` is skipped rather than spoiling the others."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "").strip()
    sent = headers.get("webhook-signature", "")
    if not (msg_id and stamp and sent):
        raise refused("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (stamp.isascii() and stamp.isdigit()):  # "²" is a digit to isdigit, not to int()
        raise refused("webhook-timestamp is not unix seconds")
    now = now or utcnow()
    if abs(now.timestamp() - int(stamp)) > TOLERANCE_SECONDS:
        raise refused(f"webhook-timestamp {stamp} is more than {TOLERANCE_SECONDS} s from the server's clock")
    candidates = []
    for entry in sent.split():
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidates.append(binascii.a2b_base64(signature, strict_mode=True))
        except (binascii.Error, ValueError):
            continue
    signed = f"{msg_id}.{stamp}.".encode() + body
    for key in keys:
        expected = key.digest(signed)
        # Every candidate is compared, so the time taken does not say which one (if any) matched.
        matched = [hmac.compare_digest(expected, candidate) for candidate in candidates]
        if any(matched):
            return
    raise refused("no webhook-signature entry matches a valid secret")


def verify_body_hmac(secrets_: list[str], body: bytes, signature_b64: str | None) -> None:
    """Shopify's X-Shopify-Hmac-Sha256 and WooCommerce's X-WC-Webhook-Signature: base64 HMAC of the body."""
    if not signature_b64:
        raise refused("missing signature header")
    for secret in secrets_:
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(expected.encode(), signature_b64.strip().encode()):
            return
    raise refused("the body's HMAC matches no valid secret")


def rotate(
    session: Session, actor: Actor, *, brand_id: int, kind: str, secret: str | None = None, grace_hours: int = 24
) -> tuple[str, dt.datetime]:
    """Install a new secret (generated for postbacks; given for Shopify/WooCommerce); older ones keep
    working until the grace period ends, so senders can switch without losing an event. The secret is stored
    encrypted (`seal_secret`) and returned in clear to be shown this once."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("admin", brand_id=brand.id)
    if kind not in KINDS:
        raise NotFoundError(f"no secret kind {kind!r}")
    secret = secret or new_postback_secret()
    until = utcnow() + dt.timedelta(hours=grace_hours)
    for old in session.scalars(
        select(BrandSecret).where(
            BrandSecret.brand_id == brand.id, BrandSecret.kind == kind, BrandSecret.expires_at.is_(None)
        )
    ):
        old.expires_at = until
    sealed = seal_secret(secret, brand_id=brand.id, kind=kind)
    session.add(BrandSecret(brand_id=brand.id, kind=kind, sealed_secret=sealed))
    session.flush()
    audit.record(session, actor, "brand_secret.rotated", brand, after={"kind": kind, "old_valid_until": until})
    return secret, until


def rekey(session: Session, actor: Actor, *, old_key: bytes) -> dict[str, int]:
    """Re-seal every stored signing secret under the current data key after the key changed (all or nothing;
    the caller commits). A secret that already opens under the current key is left as it is, so running it twice
    changes nothing; one that opens under neither key is an `UnreadableSecretError` naming its row, and nothing
    is written. Audited per brand. Counts: resealed, current."""
    actor.require("admin")
    current = sealing.data_key()
    rows = list(session.scalars(select(BrandSecret).order_by(BrandSecret.id)))
    resealed: list[tuple[BrandSecret, str]] = []
    for row in rows:
        try:
            open_secret(row.sealed_secret, brand_id=row.brand_id, kind=row.kind, key=current)
            continue
        except UnreadableSecretError:
            pass
        try:
            secret = open_secret(row.sealed_secret, brand_id=row.brand_id, kind=row.kind, key=old_key)
        except UnreadableSecretError as exc:
            raise UnreadableSecretError(
                f"brand_secrets row {row.id} (brand {row.brand_id}, {row.kind}) opens under neither the old key nor "
                f"the current one; nothing was re-sealed ({exc.message})"
            ) from None
        resealed.append((row, seal_secret(secret, brand_id=row.brand_id, kind=row.kind, key=current)))
    per_brand: dict[int, int] = {}
    for row, sealed in resealed:
        row.sealed_secret = sealed
        per_brand[row.brand_id] = per_brand.get(row.brand_id, 0) + 1
    session.flush()
    for brand_id, count in per_brand.items():
        brand = brand_repository.get(session, actor, brand_id)
        audit.record(session, actor, "brand_secret.rekeyed", brand, after={"resealed": count})
    return {"resealed": len(resealed), "current": len(rows) - len(resealed)}


def unreadable(session: Session, *, limit: int = 20) -> list[str]:
    """One line per stored signing secret that does not open under the current data key (at most ``limit``): a
    changed key not yet followed by `rekey`, or a damaged value. Empty when every one opens."""
    found: list[str] = []
    for row in session.scalars(select(BrandSecret).order_by(BrandSecret.id)):
        try:
            open_secret(row.sealed_secret, brand_id=row.brand_id, kind=row.kind)
        except UnreadableSecretError:
            found.append(
                f"brand_secrets row {row.id} (brand {row.brand_id}, {row.kind}) does not open under the current "
                "data key: run `clearline secrets rekey` with the old key, or rotate it"
            )
            if len(found) >= limit:
                break
    return found

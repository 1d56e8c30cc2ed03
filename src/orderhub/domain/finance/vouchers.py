"""Finance vouchers: one append-only entry per money movement OrderHub causes.

A refund posts a voucher that debits ``sales_returns`` (revenue given back) and credits the
account the money left from (the channel's clearing account, ``clearing:<channel>``), with
business tags (case type, channel class, how it was decided) finance can filter and total
on. Vouchers are never updated or deleted: a correction is a new voucher that reverses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orderhub.domain.aftersale.case import AfterSaleCase
from orderhub.domain.aftersale.states import PolicyAction

# Channel classes finance reports on. [assumed] grouping; extend as channels are added.
CHANNEL_CLASSES: dict[str, str] = {
    "douyin": "social-channel", "kuaishou": "social-channel", "xiaohongshu": "social-channel",
    "tiktok_shop": "social-channel",
    "taobao": "marketplace", "jd": "marketplace", "pinduoduo": "marketplace", "shopee": "marketplace",
    "amazon": "marketplace",
    "own_site": "own-site", "shopify": "own-site", "woocommerce": "own-site", "csv": "own-site",
}
REFUND_DEBIT = "sales_returns"


@dataclass(frozen=True, slots=True)
class Voucher:
    """One ledger entry: ``amount`` (minor units, positive) of ``currency`` debited to
    ``debit`` and credited to ``credit``. ``kind`` is ``refund`` or ``refund_reversal``;
    (tenant, case, kind) is unique, so posting twice is impossible."""

    id: str
    tenant_id: str
    kind: str
    case_id: str
    order_id: str
    debit: str
    credit: str
    amount: int
    currency: str
    tags: tuple[str, ...]
    reference: str | None
    memo: str
    posted_at: datetime


def channel_class(channel: str) -> str:
    """The finance class of a channel (social-channel, marketplace, own-site; other)."""
    return CHANNEL_CLASSES.get(channel, "other")


def decision_tag(case: AfterSaleCase) -> str:
    """How the refund was decided: auto-approved, manual-approved, negotiated or channel-settled."""
    if case.refund_via == "channel":
        return "channel-settled"
    if case.choice is not None:
        return "negotiated"
    if case.decision is not None and case.decision.action is PolicyAction.AUTO_APPROVE:
        return "auto-approved"
    return "manual-approved"


def refund_voucher(case: AfterSaleCase, *, voucher_id: str, order_external_id: str, now: datetime) -> Voucher:
    """The voucher a refunded case posts (call once the case is ``refunded``)."""
    tags = (case.type.value, channel_class(case.channel), decision_tag(case), f"channel:{case.channel}",
            f"reason:{case.reason}")
    return Voucher(id=voucher_id, tenant_id=case.tenant_id, kind="refund", case_id=case.id, order_id=case.order_id,
                   debit=REFUND_DEBIT, credit=f"clearing:{case.channel}", amount=case.refunded_amount,
                   currency=case.currency, tags=tags, reference=case.refund_ref,
                   memo=f"refund {case.id} order {order_external_id} ({case.type.value})", posted_at=now)

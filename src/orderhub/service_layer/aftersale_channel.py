"""Channel after-sale notifications applied to cases (the normalizer calls this inside its
batch transaction, after the channel spec mapped the message to a ``MappedAfterSale``).

* ``requested`` opens the case (one per channel case id: a repeat only refreshes the
  channel status) and the tenant's refund policy decides it like an API request;
* ``return_shipped`` records the buyer's return waybill;
* ``refunded`` means the channel executed the refund (Shopify refunds, platform
  arbitration): the case is marked refunded and its voucher posted — opened first when
  OrderHub never saw the request;
* ``cancelled`` (the buyer withdrew) and ``rejected`` (refused on the channel) close it.

Every check runs before anything is written, so a refused notification leaves nothing
behind in the batch; the normalizer dead-letters it with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orderhub.domain.aftersale.amounts import LineRequest
from orderhub.domain.aftersale.case import AfterSaleCase, Decision
from orderhub.domain.aftersale.states import TERMINAL, AfterSaleStatus, AfterSaleType, PolicyAction
from orderhub.domain.channels.model import MappedAfterSale
from orderhub.domain.errors import MappingFailed
from orderhub.domain.orders.model import Order
from orderhub.service_layer.aftersale import CaseRequest, RefundPolicies, after_case_change, open_case
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

# The decision recorded on a case the channel settled before OrderHub decided it.
CHANNEL_DECISION = Decision(action=PolicyAction.AUTO_APPROVE, rule="channel",
                            reason="the channel executed this refund", explanation="refunded on the channel")


@dataclass(frozen=True, slots=True)
class ChannelCaseOutcome:
    """What a notification did: ``outcome`` is opened, updated, unchanged or ignored."""

    outcome: str
    case_id: str | None


def _request(mapped: MappedAfterSale) -> CaseRequest:
    try:
        case_type = AfterSaleType(mapped.type)
    except ValueError:
        raise MappingFailed(f"after-sale type {mapped.type!r} is not one of "
                            f"{', '.join(t.value for t in AfterSaleType)}", field="type") from None
    return CaseRequest(
        type=case_type, reason=mapped.reason or "channel_request",
        amount=mapped.amount.amount if mapped.amount is not None else None,
        lines=tuple(LineRequest(line_no=None, sku=ln.sku, quantity=ln.quantity,
                                amount=ln.amount.amount if ln.amount is not None else None) for ln in mapped.lines),
        source="channel", external_ref=mapped.external_ref, channel_status=mapped.channel_status)


def apply_channel_aftersale(uow: SqlAlchemyUnitOfWork, order: Order, mapped: MappedAfterSale, *,
                            policies: RefundPolicies, now: datetime) -> ChannelCaseOutcome:
    """Apply one channel after-sale notification for ``order`` (see the module docstring)."""
    case = uow.aftersales.by_external_ref(order.tenant_id, order.channel, mapped.external_ref)
    if case is None:
        if mapped.state in ("cancelled", "rejected"):
            return ChannelCaseOutcome("ignored", None)  # closed before OrderHub heard of it
        request = _request(mapped)
        if mapped.state == "refunded":
            opened = open_case(uow, order, request, policies=policies, now=now, decision=CHANNEL_DECISION)
            _settle(uow, opened, order, mapped, now=now, new=True)
            return ChannelCaseOutcome("opened", opened.id)
        opened = open_case(uow, order, request, policies=policies, now=now)
        if mapped.state == "return_shipped" and opened.status is AfterSaleStatus.AWAITING_RETURN \
                and mapped.return_waybill:
            opened.return_shipped(carrier=mapped.return_carrier, waybill_no=mapped.return_waybill, now=now)
            uow.aftersales.save(opened, loaded_version=opened.version)
        return ChannelCaseOutcome("opened", opened.id)
    loaded, before = case.version, case.status
    status_changed = case.channel_status != mapped.channel_status
    case.channel_status = mapped.channel_status
    changed = _update(case, mapped, now=now)
    if mapped.state == "refunded" and case.status is not AfterSaleStatus.REFUNDED:
        _settle(uow, case, order, mapped, now=now, new=False)
        changed = True
    elif changed:
        after_case_change(uow, case, order, before=before, now=now)
    if changed or status_changed:
        uow.aftersales.save(case, loaded_version=loaded)
    return ChannelCaseOutcome("updated" if changed else "unchanged", case.id)


def _update(case: AfterSaleCase, mapped: MappedAfterSale, *, now: datetime) -> bool:
    """Apply a non-refund state; True when the case changed."""
    if case.status in TERMINAL:
        return False
    if mapped.state == "return_shipped":
        if case.status is AfterSaleStatus.AWAITING_RETURN and mapped.return_waybill and \
                (case.return_parcel or {}).get("waybill_no") != mapped.return_waybill:
            case.return_shipped(carrier=mapped.return_carrier, waybill_no=mapped.return_waybill, now=now)
            return True
        return False
    if mapped.state == "cancelled" and case.status is not AfterSaleStatus.REFUNDING:
        case.cancel(reason=f"withdrawn on the channel ({mapped.channel_status})", now=now)
        return True
    if mapped.state == "rejected" and case.status in (AfterSaleStatus.REQUESTED, AfterSaleStatus.NEGOTIATING):
        case.reject(reason=f"refused on the channel ({mapped.channel_status})", now=now)
        return True
    return False


def _settle(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, order: Order, mapped: MappedAfterSale, *,
            now: datetime, new: bool) -> None:
    """The channel refunded the case: mark it refunded (the channel's amount when given)
    and post the voucher in this transaction."""
    loaded, before = case.version, case.status
    amount = mapped.amount.amount if mapped.amount is not None else case.amount
    case.refunded(ref=mapped.external_ref, amount=amount, via="channel", now=now)
    after_case_change(uow, case, order, before=before, now=now)
    if not new:
        return
    uow.aftersales.save(case, loaded_version=loaded)

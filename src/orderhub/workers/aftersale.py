"""After-sale workers: the refund relay and the SLA timer.

The refund relay delivers ``aftersale_refund`` outbox rows: it asks the case's channel to
execute the refund (Shopify, own site, Taobao, Pinduoduo…) or, for a channel without a
refund call here, the simulated payment gateway, then confirms the refund through the bus
(case ``refunded``, voucher posted). The call is idempotent per case on the channel side, so
a retry after a lost answer can't refund twice; a refusal dead-letters the row with an
alert (``orderhub outbox requeue`` or the case's ``retry_refund`` action sends it again).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from orderhub.adapters.channels.refunds import RefundOrder, execute_refund, simulated_payment_refund
from orderhub.adapters.channels.writeback import ChannelCredentials, WriteBackError
from orderhub.adapters.db.channels import SqlShopRepository
from orderhub.adapters.db.outbox import ClaimedMessage
from orderhub.domain import ids
from orderhub.domain.commands import CheckAfterSaleSla, ConfirmRefund
from orderhub.domain.errors import DomainError
from orderhub.service_layer.aftersale import AFTERSALE_REFUND
from orderhub.workers.http_client import WorkerHttp
from orderhub.workers.outbox_relay import OutboxWorker, PermanentFailure
from orderhub.workers.timers import CommandTimer

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub


def refund_of(message: ClaimedMessage) -> RefundOrder:
    """The refund an ``aftersale_refund`` row carries; PermanentFailure (not attempted)
    when its payload lacks a field."""
    p = message.payload
    try:
        return RefundOrder(
            channel=str(p["channel"]), shop_code=str(p["shop"]), order_external_id=str(p["order_external_id"]),
            case_id=str(p["case_id"]), external_ref=p.get("external_ref"), amount=int(p["amount"]),
            currency=str(p["currency"]), reason=str(p.get("reason") or ""),
            lines=tuple((str(ln["sku"]), int(ln["quantity"]), int(ln["amount"])) for ln in p.get("lines") or ()),
            return_goods=bool(p.get("return_goods")))
    except (KeyError, TypeError, ValueError, DomainError) as exc:
        raise PermanentFailure(f"malformed aftersale_refund payload ({type(exc).__name__}: {exc})",
                               attempted=False) from exc


class RefundRelay(OutboxWorker):
    """Executes queued refunds (a runner Worker); see the module docstring."""

    kinds = (AFTERSALE_REFUND,)

    def __init__(self, hub: OrderHub, *, http_client: httpx.Client | None = None, timeout: float = 10.0,
                 **options: object) -> None:
        super().__init__(hub.engine, hub.clock, hub.metrics, timeout=timeout, name="aftersale_refund",
                         **options)  # type: ignore[arg-type]
        self._hub = hub
        self._client = WorkerHttp(http_client, timeout=timeout)
        self._http = self._client.client

    def close(self) -> None:
        """Close the HTTP client if this relay made it."""
        self._client.close()

    def deliver(self, message: ClaimedMessage) -> str | None:
        """Execute the refund; None when done (and confirmed), else the retryable error."""
        refund = refund_of(message)
        with self._hub.engine.connect() as conn:
            shop = SqlShopRepository(conn).for_tenant(message.tenant_id, refund.shop_code, channel=refund.channel)
        if shop is None or not shop.active:
            # No shop API to call (an API-created order, a shop since removed): the payment side.
            answer = simulated_payment_refund(refund)
        else:
            try:
                answer = execute_refund(refund, ChannelCredentials.from_shop(shop), self._http,
                                        now=self._clock.now(), timeout=self._timeout)
            except WriteBackError as exc:
                self._alert(message.tenant_id, refund, str(exc))
                raise PermanentFailure(str(exc), attempted=False) from exc
        if answer.error is not None:
            if answer.permanent:
                self._alert(message.tenant_id, refund, answer.error)
                raise PermanentFailure(f"{refund.channel} refused the refund: {answer.error}")
            return answer.error
        self._hub.bus.handle(ConfirmRefund(tenant_id=message.tenant_id, case_id=refund.case_id,
                                           ref=answer.ref or f"{refund.channel}-{refund.case_id}",
                                           amount=refund.amount))
        return None

    def _alert(self, tenant_id: str, refund: RefundOrder, error: str) -> None:
        with self._hub.uow_factory() as uow:
            uow.channel_state.add_alert(
                tenant_id=tenant_id, alert_id=ids.new_id("alr"), kind="aftersale_refund_failed", severity="critical",
                subject=f"aftersale:{refund.case_id}", now=self._clock.now(),
                message=f"the refund of case {refund.case_id} ({refund.amount} minor units {refund.currency}) was "
                        f"refused by {refund.channel}: {error}. Fix the cause, then take the case's retry_refund "
                        "action.",
                details={"case_id": refund.case_id, "channel": refund.channel, "error": error[:500]})
            uow.commit()


class AfterSaleTimers(CommandTimer):
    """The SLA escalation of open cases, at most every ``every``."""

    def __init__(self, hub: OrderHub, *, every: timedelta = timedelta(seconds=5)) -> None:
        super().__init__(hub, name="aftersale_timers", commands=(CheckAfterSaleSla,), every=every)

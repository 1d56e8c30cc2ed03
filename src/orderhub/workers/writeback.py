"""The channel write-back worker: sends a shipment's tracking number back to the sales channel.

The lead's shipping code queues one ``channel_tracking`` outbox row per shipment (built by
:func:`writeback_message`, in the transaction that records the shipment); this worker
delivers it with the per-channel call of :mod:`orderhub.adapters.channels.writeback`.
A 2xx (without the channel's in-body error) is delivered; a refusal (4xx other than 429,
or an in-body error the channel means as final) is dead-lettered with the channel's
message; 429, 5xx and network errors are retried with backoff (``RetryPolicy``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from orderhub.adapters.channels.writeback import (
    ChannelCredentials,
    ChannelRequest,
    TrackingWriteBack,
    WriteBackError,
    build_request,
    judge,
    lookup_request,
)
from orderhub.adapters.db.channels import SqlShopRepository
from orderhub.adapters.db.outbox import ClaimedMessage, OutboxMessage
from orderhub.adapters.metrics import Metrics
from orderhub.domain.time import Clock
from orderhub.workers.http_client import WorkerHttp
from orderhub.workers.outbox_relay import OutboxWorker, PermanentFailure, RetryPolicy, network_failure

CHANNEL_TRACKING = "channel_tracking"
TOPIC = "channel.tracking"
USER_AGENT = "OrderHub-WriteBack/1"


def writeback_message(tenant_id: str, write_back: TrackingWriteBack, order_id: str) -> OutboxMessage:
    """The outbox row that queues ``write_back`` for OrderHub order ``order_id``; add it in the
    transaction that records the shipment (target ``<channel>:<shop_code>``)."""
    payload = {
        "order_id": order_id, "external_id": write_back.external_id, "channel": write_back.channel,
        "shop": write_back.shop_code, "carrier": write_back.carrier, "waybill_no": write_back.waybill_no,
        "shipment_id": write_back.shipment_id, "shipped_at": write_back.shipped_at.isoformat(),
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in write_back.line_skus],
    }
    return OutboxMessage(tenant_id=tenant_id, kind=CHANNEL_TRACKING,
                         target=f"{write_back.channel}:{write_back.shop_code}", topic=TOPIC, payload=payload)


def write_back_of(message: ClaimedMessage) -> TrackingWriteBack:
    """The write-back a ``channel_tracking`` row carries; raises PermanentFailure (not
    attempted) when its payload lacks a field."""
    payload = message.payload
    try:
        return TrackingWriteBack(
            channel=str(payload["channel"]), shop_code=str(payload["shop"]),
            external_id=str(payload["external_id"]), carrier=str(payload["carrier"]),
            waybill_no=str(payload["waybill_no"]), shipment_id=str(payload["shipment_id"]),
            shipped_at=datetime.fromisoformat(str(payload["shipped_at"])),
            line_skus=tuple((str(line["sku"]), int(line["quantity"])) for line in payload.get("lines") or ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentFailure(f"malformed channel_tracking payload ({type(exc).__name__}: {exc})",
                               attempted=False) from exc


class ChannelWriteBack(OutboxWorker):
    """Delivers ``channel_tracking`` outbox rows to the shops' channels (a runner Worker).

    ``http_client`` is used as given (the caller closes it); without one the worker makes its
    own and :meth:`close` closes it.
    """

    kinds = (CHANNEL_TRACKING,)

    def __init__(self, engine: Engine, clock: Clock, metrics: Metrics, *, http_client: httpx.Client | None = None,
                 worker_id: str | None = None, batch_size: int = 10, timeout: float = 10.0,
                 policy: RetryPolicy | None = None, lease: timedelta | None = None,
                 rand: Callable[[], float] | None = None, name: str = "channel-writeback") -> None:
        # Shopify needs two calls per message, so the lease is sized for both.
        super().__init__(engine, clock, metrics, worker_id=worker_id, batch_size=batch_size, timeout=timeout,
                         policy=policy, lease=lease or timedelta(seconds=2 * timeout * batch_size + 30),
                         rand=rand, name=name)
        self._client = WorkerHttp(http_client, timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._http = self._client.client

    def deliver(self, message: ClaimedMessage) -> str | None:
        """Send the tracking number; None when the channel took it, else the retryable error.

        Raises PermanentFailure when the shop is gone, the channel has no write-back, the
        shop lacks credentials or a carrier code, or the channel refused the call.
        """
        write_back = write_back_of(message)
        with self._engine.connect() as conn:
            shop = SqlShopRepository(conn).for_tenant(message.tenant_id, write_back.shop_code,
                                                      channel=write_back.channel)
        if shop is None:
            raise PermanentFailure(f"{write_back.channel} shop {write_back.shop_code!r} no longer exists; "
                                   "tracking number not sent", attempted=False)
        if not shop.active:
            raise PermanentFailure(f"{write_back.channel} shop {write_back.shop_code!r} was deactivated; "
                                   "tracking number not sent (re-activate it and requeue dead messages to send)",
                                   attempted=False)
        credentials = ChannelCredentials.from_shop(shop)
        lookup: ChannelRequest | None = None
        try:
            lookup = lookup_request(write_back, credentials)
            looked_up = None
            if lookup is not None:
                looked_up, error = self._call(write_back.channel, lookup)
                if error is not None:
                    return error
            request = build_request(write_back, credentials, now=self._clock.now(),
                                    delivery_id=message.message_id, lookup=looked_up)
        except WriteBackError as exc:
            raise PermanentFailure(str(exc), attempted=lookup is not None) from exc
        _answer, error = self._call(write_back.channel, request)
        return error

    def close(self) -> None:
        """Close the HTTP client if the worker created it."""
        self._client.close()

    def _call(self, channel: str, request: ChannelRequest) -> tuple[object, str | None]:
        """Send ``request``: (decoded answer, None) on success, (None, error) to retry; raises
        PermanentFailure when the channel refused it."""
        try:
            response = request.send(self._http, timeout=self._timeout)
        except Exception as exc:  # timeouts, refused connections, bad URLs: all retried alike
            return None, network_failure(exc)
        verdict = judge(channel, response)
        if verdict.error is None:
            try:
                return response.json(), None
            except ValueError:
                return None, None
        if verdict.permanent:
            raise PermanentFailure(f"{channel} refused the write-back: {verdict.error}")
        return None, verdict.error

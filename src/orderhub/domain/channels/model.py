"""What a channel message says once its mapping spec has been applied (DESIGN.md §2 step 2).

A mapping turns one raw channel message into exactly one of:

* :class:`MappedOrder` — a full order (webhook carrying the order, a polled order, an import row);
* :class:`MappedStatus` — a status notification naming an order but not carrying it
  (TikTok Shop type-1 pushes, Shopee code-3 pushes);
* :class:`MappedAfterSale` — a buyer's after-sale (refund / return) request or its update
  (Taobao refund messages, Douyin and Pinduoduo after-sale pushes, Shopify ``refunds/create``);
* :class:`Ignored` — a message that is not about an order (WooCommerce's ping, a topic the
  channel sends that OrderHub doesn't use); stored, never applied.

Everything is canonical: money in integer minor units, times aware UTC, statuses
:class:`~orderhub.domain.orders.states.OrderStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer
from orderhub.domain.orders.states import OrderStatus


@dataclass(frozen=True, slots=True)
class MessageKey:
    """The part of a message the inbox's dedup key needs, read at receive time.

    ``event_version`` distinguishes successive versions of the same order (the channel's
    updated-at, a version counter, or a content hash when the channel gives neither).
    """

    external_id: str
    event_version: str
    kind: str = "order"            # order | status | aftersale | ignore


@dataclass(frozen=True, slots=True)
class MappedLine:
    """One canonical order line."""

    sku: str
    title: str | None
    quantity: int
    unit_price: Money
    discount: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class MappedOrder:
    """A full channel order in canonical form."""

    external_id: str
    status: OrderStatus
    channel_status: str
    currency: str
    placed_at: datetime
    updated_at: datetime | None
    paid_at: datetime | None
    lines: tuple[MappedLine, ...]
    shipping_fee: Money
    discount: Money
    buyer: Buyer
    shipping_address: Address | None
    tags: tuple[str, ...] = ()
    payment_method: str | None = None
    # Channel facts the filter rules may look at (e.g. is_test, order_type), JSON-safe.
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MappedStatus:
    """A status notification: the order ``external_id`` is now in ``status``."""

    external_id: str
    status: OrderStatus
    channel_status: str
    updated_at: datetime | None


# What a channel says happened to its after-sale case; the normalizer applies each to the
# AfterSaleCase (requested opens or updates it, the rest move it).
AFTERSALE_STATES = ("requested", "return_shipped", "refunded", "cancelled", "rejected")


@dataclass(frozen=True, slots=True)
class MappedAfterSaleLine:
    """One line of a channel after-sale case: a SKU of the order, how many, and the amount
    for it when the channel says (None: the share of the line)."""

    sku: str
    quantity: int
    amount: Money | None = None


@dataclass(frozen=True, slots=True)
class MappedAfterSale:
    """A channel after-sale notification in canonical form.

    ``external_ref`` is the channel's own case / refund id (one AfterSaleCase per id);
    ``type`` an :class:`~orderhub.domain.aftersale.states.AfterSaleType` value; ``state``
    one of :data:`AFTERSALE_STATES`; ``amount`` what the buyer asks (or was refunded, for
    ``refunded``), None for "the whole order / the listed lines".
    """

    external_ref: str
    order_external_id: str
    type: str
    state: str
    channel_status: str
    reason: str
    amount: Money | None
    updated_at: datetime | None
    lines: tuple[MappedAfterSaleLine, ...] = ()
    return_carrier: str | None = None
    return_waybill: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message that is not about an order; ``reason`` says what it was."""

    reason: str


Mapped = MappedOrder | MappedStatus | MappedAfterSale | Ignored

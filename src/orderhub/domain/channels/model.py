"""What a channel message says once its mapping spec has been applied (DESIGN.md §2 step 2).

A mapping turns one raw channel message into exactly one of:

* :class:`MappedOrder` — a full order (webhook carrying the order, a polled order, an import row);
* :class:`MappedStatus` — a status notification naming an order but not carrying it
  (TikTok Shop type-1 pushes, Shopee code-3 pushes);
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
    kind: str = "order"            # order | status | ignore


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


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message that is not about an order; ``reason`` says what it was."""

    reason: str


Mapped = MappedOrder | MappedStatus | Ignored

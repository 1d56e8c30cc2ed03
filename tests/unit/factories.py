"""Builders for domain objects used by the unit and contract tests (no clock, no I/O)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer, Order, OrderLine
from orderhub.domain.orders.states import OrderStatus

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
TENANT = "ten_test"


def line(line_no: int = 1, *, sku: str = "TEA-001", quantity: int = 2, unit_price: str = "59.90",
         discount: str = "0", tax: str = "0", currency: str = "CNY", title: str | None = "龙井 250g") -> OrderLine:
    """A validated order line; money given as decimal strings in ``currency``."""
    return OrderLine.build(
        line_no, sku=sku, title=title, quantity=quantity, unit_price=Money.parse(unit_price, currency),
        discount=Money.parse(discount, currency), tax=Money.parse(tax, currency), currency=currency)


def order(status: OrderStatus = OrderStatus.PENDING_PAYMENT, *, tenant_id: str = TENANT,
          external_id: str = "WEB-10001", currency: str = "CNY", lines: list[OrderLine] | None = None,
          shipping_fee: str | Money = "0", discount: str | Money = "0", now: datetime = T0,
          **extra: Any) -> Order:
    """A new order created through ``Order.create`` (so it carries its OrderCreated event).

    Money may be given as a decimal string in ``currency`` or as a ready :class:`Money`.
    """

    def money(value: str | Money) -> Money:
        return value if isinstance(value, Money) else Money.parse(value, currency)

    kwargs: dict[str, Any] = {
        "tenant_id": tenant_id, "channel": "own_site", "shop": "main", "external_id": external_id,
        "currency": currency, "status": status,
        "lines": [line(currency=currency)] if lines is None else lines,
        "shipping_fee": money(shipping_fee), "discount": money(discount),
        "buyer": Buyer(name="王小明", phone="138****5678", email=None),
        "shipping_address": Address(country="CN", province="浙江省", city="杭州市", district="西湖区",
                                    detail="文三路 90 号", postcode="310000", name="王小明", phone="138****5678"),
        "tags": ("express",), "placed_at": T0, "paid_at": None, "now": now,
    }
    kwargs.update(extra)
    return Order.create(**kwargs)


def snapshot(o: Order) -> dict[str, Any]:
    """Every field of ``o`` (version, keys and recorded events included), detached from the order.

    The order's mutable containers are copied; everything inside them (lines, money, events)
    is frozen, so a shallow copy is enough to see any change ``apply`` could make.
    """
    return {f.name: copy.copy(value) if isinstance(value := getattr(o, f.name), (list, set, dict)) else value
            for f in dataclasses.fields(o)}

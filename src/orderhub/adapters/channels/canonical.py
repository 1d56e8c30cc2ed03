"""A mapped message as plain JSON: what fixtures' ``*.expected.json`` hold and what a dry run shows.

Money is integer minor units, times are UTC ISO 8601 with ``+00:00``; an order's ``total`` is
the sum of its line totals (quantity x unit price - discount + tax) plus shipping less the
order-level discount.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orderhub.adapters.channels.aftersale_mapping import aftersale_to_dict
from orderhub.domain.channels.model import Ignored, Mapped, MappedAfterSale, MappedLine, MappedOrder, MappedStatus
from orderhub.domain.orders.model import Address


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def line_total(line: MappedLine) -> int:
    """A line's total in minor units: quantity x unit price - discount + tax."""
    return line.quantity * line.unit_price.amount - line.discount.amount + line.tax.amount


def order_total(order: MappedOrder) -> int:
    """An order's total in minor units: lines + shipping - order discount."""
    return sum(line_total(line) for line in order.lines) + order.shipping_fee.amount - order.discount.amount


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"country": address.country, "province": address.province, "city": address.city,
            "district": address.district, "detail": address.detail, "postcode": address.postcode,
            "name": address.name, "phone": address.phone}


def order_to_dict(order: MappedOrder) -> dict[str, Any]:
    """The canonical JSON of a mapped order."""
    return {
        "external_id": order.external_id,
        "status": order.status.value,
        "channel_status": order.channel_status,
        "currency": order.currency,
        "placed_at": _time(order.placed_at),
        "paid_at": _time(order.paid_at),
        "updated_at": _time(order.updated_at),
        "lines": [
            {"sku": line.sku, "title": line.title, "quantity": line.quantity, "unit_price": line.unit_price.amount,
             "discount": line.discount.amount, "tax": line.tax.amount}
            for line in order.lines
        ],
        "shipping_fee": order.shipping_fee.amount,
        "discount": order.discount.amount,
        "total": order_total(order),
        "buyer": {"name": order.buyer.name, "phone": order.buyer.phone, "email": order.buyer.email},
        "shipping_address": _address(order.shipping_address),
        "tags": list(order.tags),
        "payment_method": order.payment_method,
        "attributes": dict(order.attributes),
    }


def status_to_dict(status: MappedStatus) -> dict[str, Any]:
    """The canonical JSON of a status notification."""
    return {"external_id": status.external_id, "status": status.status.value,
            "channel_status": status.channel_status, "updated_at": _time(status.updated_at)}


def mapped_to_dict(mapped: Mapped) -> dict[str, Any]:
    """``{"kind": ..., "order"|"status"|"aftersale"|"reason": ...}`` for any mapped message."""
    if isinstance(mapped, MappedAfterSale):
        return {"kind": "aftersale", "aftersale": aftersale_to_dict(mapped)}
    if isinstance(mapped, MappedOrder):
        return {"kind": "order", "order": order_to_dict(mapped)}
    if isinstance(mapped, MappedStatus):
        return {"kind": "status", "status": status_to_dict(mapped)}
    assert isinstance(mapped, Ignored)
    return {"kind": "ignore", "reason": mapped.reason}

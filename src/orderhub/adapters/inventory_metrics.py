"""Inventory gauges read at scrape time: the phantom reservation rate and available units
per tenant (issue 4 scope 7).

The figures come through a read function (no writes) handed in by the composition root,
so every process reports what the database says, not what it happened to see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class StockFigures(Protocol):
    """A tenant's stock figures (service_layer.inventory_check.TenantStockFigures)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def available(self) -> int: ...

    @property
    def reserved_paid_unshipped(self) -> int: ...


def phantom_rate(figures: StockFigures) -> float:
    """Units reserved for paid but unshipped orders ÷ units available; 0 when none are
    available (a rate over nothing would be infinite and useless on a dashboard)."""
    return figures.reserved_paid_unshipped / figures.available if figures.available > 0 else 0.0


class InventoryCollector(Collector):
    """Exports ``orderhub_phantom_reservation_rate{tenant}`` and
    ``orderhub_stock_available_units{tenant}``, read through ``read`` at every scrape."""

    def __init__(self, read: Callable[[], Iterable[StockFigures]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """One sample per tenant with stock or reserved units."""
        rate = GaugeMetricFamily("orderhub_phantom_reservation_rate",
                                 "Units reserved for paid, unshipped orders per unit available", labels=["tenant"])
        available = GaugeMetricFamily("orderhub_stock_available_units",
                                      "Units available (on hand less reserved) over all warehouses",
                                      labels=["tenant"])
        try:
            figures = list(self._read())
        except Exception:  # a scrape must not fail because the database blinked
            figures = []
        for f in figures:
            rate.add_metric([f.tenant_id], phantom_rate(f))
            available.add_metric([f.tenant_id], f.available)
        yield rate
        yield available


def watch_inventory(registry: CollectorRegistry, read: Callable[[], Iterable[StockFigures]]) -> None:
    """Register the inventory gauges on ``registry`` (``Metrics.registry``)."""
    registry.register(InventoryCollector(read))

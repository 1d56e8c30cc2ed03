"""Prometheus metrics. One registry per application instance (nothing global), so tests
and several apps in one process don't collide."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orderhub.domain.aftersale.events import AfterSaleChanged
from orderhub.domain.events import Event, OrderCreated, OrderEventApplied, OrderEventIgnoredStale


class _OutboxCollector(Collector):
    """Reads outbox depth per status at scrape time (so every process reports the truth)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("orderhub_outbox_messages", "Outbox messages by status", labels=["status"])
        try:
            counts = self._counts()
        except Exception:  # a scrape must not fail because the database blinked
            counts = {}
        for status in ("pending", "in_progress", "done", "dead"):
            family.add_metric([status], counts.get(status, 0))
        yield family


class Metrics:
    """The counters and histograms OrderHub exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("orderhub_http_requests", "HTTP requests", ["method", "route", "status"],
                                     registry=r)
        self.http_latency = Histogram("orderhub_http_request_seconds", "HTTP request latency", ["method", "route"],
                                      registry=r)
        self.orders_created = Counter("orderhub_orders_created", "Orders created", ["channel"], registry=r)
        self.order_transitions = Counter("orderhub_order_transitions", "Order status changes applied",
                                         ["from_status", "to_status"], registry=r)
        self.order_conflicts = Counter("orderhub_order_conflicts", "Stale order events ignored (conflicts)",
                                       ["channel"], registry=r)
        self.channel_messages = Counter("orderhub_channel_messages", "Channel messages received, by outcome",
                                        ["channel", "source", "outcome"], registry=r)
        self.channel_processed = Counter("orderhub_channel_messages_processed",
                                         "Inbox messages processed by the normalizer, by result",
                                         ["channel", "result"], registry=r)
        self.mapping_failures = Counter("orderhub_mapping_failures", "Channel messages dead-lettered by mapping, "
                                        "per channel and payload field", ["channel", "field"], registry=r)
        self.signature_failures = Counter("orderhub_webhook_signature_failures",
                                          "Webhook pushes refused for a bad or missing signature", ["channel"],
                                          registry=r)
        self.tracking_events = Counter("orderhub_tracking_events", "Carrier tracking events received, by outcome",
                                       ["carrier", "outcome"], registry=r)
        self.tracking_unknown_codes = Counter("orderhub_tracking_unknown_codes",
                                              "Carrier events with a code no table or override knows",
                                              ["carrier", "code"], registry=r)
        self.outbox_deliveries = Counter("orderhub_outbox_deliveries", "Outbox delivery attempts by result",
                                         ["kind", "result"], registry=r)
        self.aftersale_decisions = Counter("orderhub_aftersale_decisions",
                                           "After-sale cases decided, by type, action and the rule that fired",
                                           ["type", "action", "rule"], registry=r)
        self.aftersale_refunds = Counter("orderhub_aftersale_refunds", "After-sale refunds executed, by channel "
                                         "and how (gateway or channel-settled)", ["channel", "via"], registry=r)
        self.aftersale_refunded_minor = Counter("orderhub_aftersale_refunded_minor",
                                                "Money refunded, in minor units", ["currency"], registry=r)
        self.aftersale_escalations = Counter("orderhub_aftersale_sla_escalations",
                                             "After-sale cases that reached an SLA level", ["level"], registry=r)

    def watch_outbox(self, counts: Callable[[], dict[str, int]]) -> None:
        """Export outbox depth, read through ``counts`` at every scrape."""
        self.registry.register(_OutboxCollector(counts))

    def on_event(self, event: Event) -> None:
        """Event handler: count committed domain events."""
        if isinstance(event, OrderCreated):
            self.orders_created.labels(event.channel).inc()
        elif isinstance(event, OrderEventApplied):
            self.order_transitions.labels(event.from_status, event.to_status).inc()
        elif isinstance(event, OrderEventIgnoredStale):
            self.order_conflicts.labels(event.channel).inc()
        elif isinstance(event, AfterSaleChanged):
            self._on_aftersale(event)

    def _on_aftersale(self, event: AfterSaleChanged) -> None:
        data = event.data
        if event.action == "decided":
            decision = data.get("decision") or {}
            self.aftersale_decisions.labels(str(data.get("type", "?")), str(decision.get("action", "?")),
                                            str(decision.get("rule", "?"))[:100]).inc()
        elif event.action == "refunded":
            self.aftersale_refunds.labels(str(data.get("channel", "?")), str(data.get("via", "?"))).inc()
            self.aftersale_refunded_minor.labels(str(data.get("currency", "?"))).inc(int(data.get("amount") or 0))
        elif event.action == "escalated":
            self.aftersale_escalations.labels(str(data.get("level", "?"))).inc()

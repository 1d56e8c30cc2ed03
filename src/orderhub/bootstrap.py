"""The composition root: the one place that builds engines, clock, bus and queries and
wires handlers to their dependencies. Nothing here runs at import time."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from orderhub.adapters.channels.mapping import SpecRegistry, load_registry
from orderhub.adapters.db import migrate
from orderhub.adapters.db.engine import build_engine
from orderhub.adapters.inventory_metrics import watch_inventory
from orderhub.adapters.metrics import Metrics
from orderhub.adapters.webhook_targets import WebhookTargetGuard
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.aftersale.events import AfterSaleChanged
from orderhub.domain.events import Event, OrderCreated, OrderEventApplied, OrderEventIgnoredStale, RuleSetUpdated
from orderhub.domain.time import Clock, SystemClock
from orderhub.service_layer import inventory_check
from orderhub.service_layer.aftersale import RefundPolicies
from orderhub.service_layer.fulfillment_rules import CARRIER_CODES, CodeBooks, RoutingRules
from orderhub.service_layer.handlers import (
    aftersale,
    channels,
    fulfillment,
    inventory,
    orders,
    outbox,
    rules,
    tenancy,
    tracking,
)
from orderhub.service_layer.messagebus import MessageBus
from orderhub.service_layer.queries import Queries
from orderhub.service_layer.unit_of_work import UnitOfWorkFactory


@dataclass
class OrderHub:
    """A wired application: what entrypoints and workers are given."""

    settings: Settings
    engine: Engine
    clock: Clock
    bus: MessageBus
    queries: Queries
    metrics: Metrics
    uow_factory: UnitOfWorkFactory
    webhook_guard: WebhookTargetGuard
    specs: SpecRegistry
    code_books: CodeBooks
    routing: RoutingRules
    refund_policies: RefundPolicies

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, engine: Engine | None = None, clock: Clock | None = None,
              upgrade_db: bool = False) -> OrderHub:
    """Build an :class:`OrderHub` from settings (default: the environment).

    ``upgrade_db`` runs pending migrations first (``init``, ``serve`` and ``demo`` do;
    the API alone never changes the schema behind an operator's back).
    """
    settings = settings or Settings.from_env()
    engine = engine or build_engine(settings.database_url)
    clock = clock or SystemClock()
    if upgrade_db:
        migrate.upgrade(engine)
    uow_factory = UnitOfWorkFactory(engine, clock)
    webhook_guard = WebhookTargetGuard(allow_private=settings.webhooks_allow_private)
    metrics = Metrics()

    # Built-in channel mapping specs, overridden or extended by $ORDERHUB_HOME/channels/*.yaml.
    specs = load_registry(settings.home / "channels")
    queries = Queries(engine)
    metrics.watch_outbox(queries.outbox_counts)
    watch_inventory(metrics.registry, functools.partial(inventory_check.stock_figures, engine))
    code_books = CodeBooks()
    routing = RoutingRules()
    refund_policies = RefundPolicies()
    bus = MessageBus(
        uow_factory,
        command_handlers={
            commands.CreateOrder: orders.create_order,
            commands.ApplyOrderEvent: orders.apply_order_event,
            commands.CreateTenant: tenancy.create_tenant,
            commands.CreateApiKey: tenancy.create_api_key,
            commands.RegisterWebhookEndpoint: functools.partial(tenancy.register_webhook_endpoint,
                                                                guard=webhook_guard),
            commands.RequeueDeadMessages: outbox.requeue_dead_messages,
            commands.RegisterShop: functools.partial(channels.register_shop, specs=specs),
            commands.ReceiveChannelMessage: functools.partial(channels.receive_channel_message, specs=specs,
                                                              metrics=metrics, shops=channels.ShopCache()),
            commands.ReplayInbox: channels.replay_inbox,
            commands.ResumeChannel: channels.resume_channel,
            commands.PutRuleSet: rules.put_rule_set,
            commands.CreateWarehouse: inventory.create_warehouse,
            commands.SetStock: inventory.set_stock,
            commands.AdjustStock: inventory.adjust_stock,
            commands.AddCarrierAccount: fulfillment.add_carrier_account,
            commands.PlanFulfilment: functools.partial(fulfillment.plan_fulfilment, routing=routing, skipped=set()),
            commands.RecordWaybill: fulfillment.record_waybill,
            commands.RecordScan: fulfillment.record_scan,
            commands.SyncDevice: fulfillment.sync_device,
            commands.DeviceHeartbeat: fulfillment.device_heartbeat,
            commands.UnlockOperator: fulfillment.unlock_operator,
            commands.CheckStalls: fulfillment.check_stalls,
            commands.CompleteDelivered: fulfillment.complete_delivered,
            commands.ReceiveTrackingEvents: functools.partial(tracking.receive_tracking_events, books=code_books,
                                                              metrics=metrics),
            commands.ReplayUnknownTracking: functools.partial(tracking.replay_unknown_tracking, books=code_books),
            commands.RequestAfterSale: functools.partial(aftersale.request_aftersale, policies=refund_policies),
            commands.ActOnAfterSale: aftersale.act_on_aftersale,
            commands.ConfirmRefund: aftersale.confirm_refund,
            commands.CheckAfterSaleSla: aftersale.check_aftersale_sla,
        },
        event_handlers={
            OrderCreated: [metrics.on_event],
            OrderEventApplied: [metrics.on_event],
            OrderEventIgnoredStale: [metrics.on_event],
            AfterSaleChanged: [metrics.on_event],
        },
    )

    def replay_when_codes_change(event: Event) -> None:
        # A new override may explain codes that arrived while unknown: apply those events now.
        if isinstance(event, RuleSetUpdated) and event.kind == CARRIER_CODES:
            bus.handle(commands.ReplayUnknownTracking(tenant_id=event.tenant_id))

    bus.subscribe(RuleSetUpdated, replay_when_codes_change)
    return OrderHub(settings=settings, engine=engine, clock=clock, bus=bus, queries=queries,
                    metrics=metrics, uow_factory=uow_factory, webhook_guard=webhook_guard, specs=specs,
                    code_books=code_books, routing=routing, refund_policies=refund_policies)

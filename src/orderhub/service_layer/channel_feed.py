"""The channel stock feed (issue 4 scope 6): after stock changes, tell every sales channel
how many units of each changed SKU it may sell.

Per SKU the figure is computed from the stock rows of the tenant's active warehouses with
``channel_quantities`` (available − safety stock, times the channel's share; under the low
threshold only the primary channel keeps selling), compared with the figure last sent
(table ``channel_stock``), and each change becomes ONE outbox row per (channel, SKU):
while a row for the same target is still pending, a newer figure replaces its payload
instead of queuing another, so a channel never works through a backlog of stale figures.

Call :func:`publish_stock_feed` inside the unit of work that changed the stock, so the
figures and the outgoing messages commit with the change or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from orderhub.adapters.db.outbox import OutboxMessage
from orderhub.domain.inventory.feed import ChannelFeedPolicy, ChannelShare, InvalidChannelFeed, pool_figures
from orderhub.domain.inventory.stock import StockLevel
from orderhub.domain.time import isoformat
from orderhub.service_layer.inventory_policy import load_policy
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

KIND = "channel_stock"
TOPIC = "inventory.channel_stock"
def feed_target(channel: str, sku: str) -> str:
    """The outbox target of a (channel, SKU) figure: ``channel:sku`` (channel ≤ 40 and SKU ≤ 100
    characters fit the 200-character column)."""
    return f"{channel}:{sku}"


def feed_policy(uow: SqlAlchemyUnitOfWork, tenant_id: str) -> ChannelFeedPolicy:
    """The tenant's feed settings; with no channels configured, every channel the tenant
    has a shop on sells the whole pool (share 1000‰, none primary)."""
    settings = load_policy(uow, tenant_id).channel_feed
    try:
        policy = ChannelFeedPolicy.from_mapping(settings)
    except InvalidChannelFeed as exc:
        # A stored policy that no longer validates must not fail the order or stock change
        # that triggered the feed: fall back to the shop channels, and say so.
        log.warning("channel_feed_policy_invalid", tenant=tenant_id, error=exc.message)
        policy = ChannelFeedPolicy()
    if policy.channels:
        return policy
    channels = sorted({shop.channel for shop in uow.shops.list(tenant_id) if shop.active})
    return ChannelFeedPolicy(tuple(ChannelShare(ch) for ch in channels), policy.low_threshold)


def publish_stock_feed(uow: SqlAlchemyUnitOfWork, tenant_id: str, skus: Iterable[str]) -> int:
    """Queue the channel figures of ``skus`` that changed since they were last sent;
    returns how many (channel, SKU) figures changed. Runs inside the caller's unit of work
    (no commit here); a tenant without warehouses or channels publishes nothing.

    The SKUs' stock rows are locked (``lock_stock``, already held when the caller changed
    them), so two transactions publishing the same SKU queue instead of both folding into
    or both adding the same pending outbox row.
    """
    sku_list = sorted(set(skus))
    if not sku_list:
        return 0
    houses = {w.id for w in uow.inventory.warehouses(tenant_id) if w.active}
    if not houses:
        return 0
    policy = feed_policy(uow, tenant_id)
    if not policy.channels:
        return 0
    now = uow.clock.now()
    levels = uow.inventory.lock_stock(tenant_id, skus=sku_list)
    by_sku: dict[str, list[StockLevel]] = {sku: [] for sku in sku_list}
    for (wid, sku), level in levels.items():
        if wid in houses:
            by_sku[sku].append(level)
    last = uow.inventory.channel_figures(tenant_id, sku_list)
    changed = 0
    for sku in sku_list:
        sellable, available = pool_figures(by_sku[sku])
        quantities = policy.quantities(sellable, available)
        low = available < policy.low_threshold  # a threshold of 0 never triggers
        for channel, quantity in quantities.items():
            if last.get((channel, sku)) == quantity:
                continue
            # No "previous" figure: a coalesced row replaces one the channel never received.
            payload = {"tenant": tenant_id, "channel": channel, "sku": sku, "quantity": quantity,
                       "available": available, "sellable": sellable, "low_stock": low, "as_of": isoformat(now)}
            uow.outbox.queue_coalesced(OutboxMessage(tenant_id=tenant_id, kind=KIND,
                                                        target=feed_target(channel, sku), topic=TOPIC,
                                                        payload=payload), now=now)
            uow.inventory.save_channel_figure(tenant_id, channel, sku, quantity, now=now)
            changed += 1
    return changed

"""The channel stock feed on real SQLite and PostgreSQL: per-channel quantities with shares
and the low-stock rule, one coalesced outbox row per (channel, SKU), nothing for unchanged
figures, and the shop channels when none are configured."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from orderhub.adapters.db.tables import channel_stock, outbox
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.commands import Actor
from orderhub.service_layer.channel_feed import KIND, TOPIC, feed_target, publish_stock_feed
from orderhub.service_layer.handlers.inventory import create_warehouse, set_stock

SKU = "TEA-001"
FEED = {"low_threshold": 5, "channels": [{"channel": "tmall", "share_permille": 1000, "primary": True},
                                         {"channel": "douyin", "share_permille": 500},
                                         {"channel": "pinduoduo", "share_permille": 250}]}


def setup_stock(hub: OrderHub, actor: Actor, *, feed: dict[str, Any] | None = FEED) -> None:
    if feed is not None:
        hub.bus.handle(commands.PutRuleSet(actor=actor, kind="inventory_policy", body={"channel_feed": feed}))
    for code in ("HZ1", "SH1"):
        create_warehouse(commands.CreateWarehouse(actor=actor, code=code, name=code), hub.uow_factory())
    stock(hub, actor, "HZ1", 100, safety=10)
    stock(hub, actor, "SH1", 20)


def stock(hub: OrderHub, actor: Actor, code: str, on_hand: int, *, safety: int | None = None) -> None:
    set_stock(commands.SetStock(actor=actor, warehouse=code, sku=SKU, on_hand=on_hand, safety_stock=safety),
              hub.uow_factory())


def publish(hub: OrderHub, tenant_id: str, *skus: str) -> int:
    """Publish explicitly. Stock writes already publish at their commit, so after one this
    finds nothing left to send (0) unless something else moved the figures."""
    uow = hub.uow_factory()
    with uow:
        changed = publish_stock_feed(uow, tenant_id, skus or (SKU,))
        uow.commit()
    return changed


def sent(hub: OrderHub, tenant_id: str) -> dict[str, int]:
    with hub.engine.connect() as conn:
        rows = conn.execute(select(channel_stock.c.channel, channel_stock.c.quantity)
                            .where(channel_stock.c.tenant_id == tenant_id)).all()
    return {r.channel: r.quantity for r in rows}


def queued(hub: OrderHub, tenant_id: str) -> list[Any]:
    with hub.engine.connect() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.tenant_id == tenant_id, outbox.c.kind == KIND)
                                 .order_by(outbox.c.id)).all())


def test_shares_go_out_once_per_channel_and_sku(hub: OrderHub, actor: Actor) -> None:
    setup_stock(hub, actor)
    # sellable = (100 − 10 safety) + 20 = 110; douyin may sell half, pinduoduo a quarter. The stock
    # writes published it at their commits.
    assert publish(hub, actor.tenant_id) == 0
    assert sent(hub, actor.tenant_id) == {"tmall": 110, "douyin": 55, "pinduoduo": 27}
    rows = queued(hub, actor.tenant_id)
    assert sorted(r.target for r in rows) == ["douyin:TEA-001", "pinduoduo:TEA-001", "tmall:TEA-001"]
    assert {r.status for r in rows} == {"pending"} and {r.topic for r in rows} == {TOPIC}
    tmall = next(r.payload for r in rows if r.target == "tmall:TEA-001")
    assert (tmall["sku"], tmall["quantity"], tmall["available"], tmall["sellable"], tmall["low_stock"]) == (
        SKU, 110, 120, 110, False)

    # Nothing changed: nothing is written.
    assert publish(hub, actor.tenant_id) == 0
    assert len(queued(hub, actor.tenant_id)) == 3
    # A SKU nobody stocks sells 0 everywhere, once.
    assert publish(hub, actor.tenant_id, "NOPE") == 3
    assert publish(hub, actor.tenant_id, "NOPE") == 0


def test_changes_before_delivery_coalesce_into_one_pending_row(hub: OrderHub, actor: Actor) -> None:
    setup_stock(hub, actor)
    publish(hub, actor.tenant_id)
    stock(hub, actor, "HZ1", 50)
    assert sent(hub, actor.tenant_id) == {"tmall": 60, "douyin": 30, "pinduoduo": 15}
    stock(hub, actor, "HZ1", 70)
    assert publish(hub, actor.tenant_id) == 0
    rows = queued(hub, actor.tenant_id)
    assert len(rows) == 3                                           # still one row per (channel, SKU)
    assert {r.target: r.payload["quantity"] for r in rows} == {
        "tmall:TEA-001": 80, "douyin:TEA-001": 40, "pinduoduo:TEA-001": 20}
    assert sent(hub, actor.tenant_id) == {"tmall": 80, "douyin": 40, "pinduoduo": 20}

    # Once a row was delivered (or is being delivered), a new figure gets a row of its own.
    with hub.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.target == "tmall:TEA-001").values(status="done"))
        conn.execute(update(outbox).where(outbox.c.target == "douyin:TEA-001").values(status="in_progress"))
    stock(hub, actor, "HZ1", 60)
    assert publish(hub, actor.tenant_id) == 0
    rows = queued(hub, actor.tenant_id)
    by_target: dict[str, list[tuple[str, int]]] = {}
    for r in rows:
        by_target.setdefault(r.target, []).append((r.status, r.payload["quantity"]))
    assert by_target == {"tmall:TEA-001": [("done", 80), ("pending", 70)],
                         "douyin:TEA-001": [("in_progress", 40), ("pending", 35)],
                         "pinduoduo:TEA-001": [("pending", 17)]}


def test_low_stock_zeroes_every_channel_but_the_primary(hub: OrderHub, actor: Actor) -> None:
    setup_stock(hub, actor)
    publish(hub, actor.tenant_id)
    stock(hub, actor, "HZ1", 12)                                    # available 12 + 20: not low
    stock(hub, actor, "SH1", 0)                                     # available 12: not low
    publish(hub, actor.tenant_id)
    assert sent(hub, actor.tenant_id) == {"tmall": 2, "douyin": 1, "pinduoduo": 0}
    stock(hub, actor, "HZ1", 4, safety=0)                           # available 4 < threshold 5
    assert sent(hub, actor.tenant_id) == {"tmall": 4, "douyin": 0, "pinduoduo": 0}
    low = {r.target: r.payload["low_stock"] for r in queued(hub, actor.tenant_id)}
    assert low == {"tmall:TEA-001": True, "douyin:TEA-001": True, "pinduoduo:TEA-001": False}
    stock(hub, actor, "HZ1", 3, safety=0)                           # only the primary still moves
    assert sent(hub, actor.tenant_id) == {"tmall": 3, "douyin": 0, "pinduoduo": 0}


def test_without_configured_channels_every_shop_channel_sells_the_pool(hub: OrderHub, actor: Actor) -> None:
    for code, channel in (("sh-1", "shopify"), ("dy-1", "douyin"), ("dy-2", "douyin")):
        hub.bus.handle(commands.RegisterShop(actor=actor, code=code, channel=channel, name=code,
                                             secret="s3cret-s3cret", timezone=None, settings={}))
    setup_stock(hub, actor, feed=None)                              # the shipped default: channels: []
    assert publish(hub, actor.tenant_id) == 0
    assert sent(hub, actor.tenant_id) == {"douyin": 110, "shopify": 110}
    # The default threshold (5) with no primary channel: a low SKU stops selling everywhere.
    stock(hub, actor, "HZ1", 0, safety=0)
    stock(hub, actor, "SH1", 3)
    publish(hub, actor.tenant_id)
    assert sent(hub, actor.tenant_id) == {"douyin": 0, "shopify": 0}


def test_a_tenant_without_warehouses_publishes_nothing(hub: OrderHub, actor: Actor) -> None:
    hub.bus.handle(commands.PutRuleSet(actor=actor, kind="inventory_policy", body={"channel_feed": FEED}))
    assert publish(hub, actor.tenant_id) == 0
    assert queued(hub, actor.tenant_id) == []


def test_the_longest_targets_fit_the_outbox_column() -> None:
    assert feed_target("tmall", SKU) == "tmall:TEA-001"
    longest = feed_target("c" * 40, "X" * 100)   # channel and SKU at their column sizes
    assert len(longest) <= outbox.c.target.type.length

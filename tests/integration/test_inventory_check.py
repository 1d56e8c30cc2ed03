"""`orderhub inventory check [--repair]` and the phantom reservation metric, on real SQLite
and PostgreSQL: drift and phantoms are found, repaired through audited REPAIR movements, and
what can't be repaired safely is left alone and reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import typer
from sqlalchemy import delete, func, select, update
from typer.testing import CliRunner

from orderhub.adapters.db.tables import (
    audit_events,
    channel_stock,
    order_lines,
    orders,
    reservations,
    stock_levels,
    stock_movements,
)
from orderhub.adapters.inventory_metrics import watch_inventory
from orderhub.bootstrap import OrderHub
from orderhub.config import Settings
from orderhub.domain import commands, ids
from orderhub.domain.commands import Actor
from orderhub.domain.inventory.reservations import Reservation, ReservationStatus
from orderhub.domain.inventory.stock import Bucket, Movement, MovementKind, StockLevel
from orderhub.entrypoints.cli.inventory_check import inventory_check
from orderhub.service_layer.handlers.inventory import create_warehouse, set_stock
from orderhub.service_layer.inventory_check import check_inventory, repair_inventory, stock_figures

PLACED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
SKU = "TEA-001"


# --------------------------------------------------------------------------- helpers
def warehouse(hub: OrderHub, actor: Actor, code: str = "HZ1") -> None:
    create_warehouse(commands.CreateWarehouse(actor=actor, code=code, name=f"仓 {code}"), hub.uow_factory())


def stock(hub: OrderHub, actor: Actor, on_hand: int, code: str = "HZ1", sku: str = SKU) -> None:
    set_stock(commands.SetStock(actor=actor, warehouse=code, sku=sku, on_hand=on_hand), hub.uow_factory())


def order(hub: OrderHub, actor: Actor, external_id: str, quantity: int, *, status: str = "paid") -> str:
    cmd = commands.CreateOrder(actor=actor, channel="own_site", shop="main", external_id=external_id, currency="CNY",
                               status=status, placed_at=PLACED, paid_at=PLACED if status == "paid" else None,
                               lines=(commands.LineInput(SKU, quantity, "59.90"),))
    return str(hub.bus.handle(cmd).order_id)


def event(hub: OrderHub, actor: Actor, order_id: str, type_: str) -> None:
    hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=order_id, type=type_))


def row(hub: OrderHub, tenant_id: str, sku: str = SKU) -> StockLevel:
    uow = hub.uow_factory()
    with uow:
        levels = [lv for (_, s), lv in uow.inventory.levels(tenant_id).items() if s == sku]
    assert len(levels) == 1
    return levels[0]


def ledger(hub: OrderHub, tenant_id: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    uow = hub.uow_factory()
    with uow:
        return uow.inventory.movement_sums(tenant_id)


def reservation_statuses(hub: OrderHub, tenant_id: str, order_id: str) -> list[str]:
    uow = hub.uow_factory()
    with uow:
        return [r.status.value for r in uow.inventory.reservations_for_order(tenant_id, order_id)]


def repair(hub: OrderHub, tenant_id: str) -> Any:
    uow = hub.uow_factory()
    uow.act_as(Actor(tenant_id=tenant_id, actor="cli", source="cli"))
    return repair_inventory(uow, tenant_id)


def orphan_reservation(hub: OrderHub, tenant_id: str, quantity: int) -> str:
    """A reservation (with its reserve movement: the ledger still adds up) for an order that
    doesn't exist: what a crash between two systems, or a hand-deleted order, leaves."""
    uow = hub.uow_factory()
    with uow:
        now = uow.clock.now()
        (wid, sku), _ = next(iter(uow.inventory.levels(tenant_id).items()))
        uow.inventory.lock_stock(tenant_id, keys=[(wid, sku)])
        assert uow.inventory.reserve(tenant_id, wid, sku, quantity, Bucket.STOCK, now=now)
        rid = ids.new_id("rsv")
        uow.inventory.add_reservations(tenant_id, [Reservation(rid, "ord_gone", 1, wid, sku, quantity, Bucket.STOCK,
                                                               ReservationStatus.ACTIVE, now)])
        uow.inventory.add_movements(tenant_id, [Movement(wid, sku, MovementKind.RESERVE, reserved_delta=quantity,
                                                         order_id="ord_gone", reservation_id=rid)],
                                    actor="test", now=now)
        uow.commit()
    return rid


def actions(hub: OrderHub, tenant_id: str) -> list[str]:
    with hub.engine.connect() as conn:
        return list(conn.execute(select(audit_events.c.action).where(audit_events.c.tenant_id == tenant_id)
                                 .order_by(audit_events.c.seq)).scalars())


# --------------------------------------------------------------------------- tests
def test_a_consistent_tenant_checks_clean(hub: OrderHub, actor: Actor) -> None:
    warehouse(hub, actor)
    stock(hub, actor, 10)
    a = order(hub, actor, "W-1", 3)
    b = order(hub, actor, "W-2", 2)
    event(hub, actor, a, "cancel")
    event(hub, actor, b, "ship")
    found = check_inventory(hub.engine, actor.tenant_id)
    assert found.ok, found
    assert found.rows == 1
    level = row(hub, actor.tenant_id)
    assert (level.on_hand, level.reserved) == (8, 0)
    report = repair(hub, actor.tenant_id)
    assert report.ok and report.repairs == () and report.phantoms_closed == 0


def test_phantoms_are_listed_and_closed_the_way_their_order_asks(hub: OrderHub, actor: Actor) -> None:
    warehouse(hub, actor)
    stock(hub, actor, 20)
    cancelled = order(hub, actor, "W-1", 3)
    shipped = order(hub, actor, "W-2", 4)
    delivered = order(hub, actor, "W-3", 1)
    kept = order(hub, actor, "W-4", 2)
    gone = orphan_reservation(hub, actor.tenant_id, 5)
    # The orders moved on behind the service's back (a restore, a manual fix in the database),
    # so their reservations still hold stock for nobody.
    with hub.engine.begin() as conn:
        conn.execute(update(orders).where(orders.c.id == cancelled).values(status="cancelled"))
        conn.execute(update(orders).where(orders.c.id == shipped).values(status="shipped"))
        conn.execute(update(orders).where(orders.c.id == delivered).values(status="delivered"))
    assert row(hub, actor.tenant_id).reserved == 15

    found = check_inventory(hub.engine, actor.tenant_id)
    assert found.reserved_drift == () and found.ledger_drift == ()
    by_order = {p.order_id: (p.order_status, p.quantity, p.target.value) for p in found.phantoms}
    assert by_order == {cancelled: ("cancelled", 3, "released"), shipped: ("shipped", 4, "consumed"),
                        delivered: ("delivered", 1, "consumed"), "ord_gone": ("gone", 5, "released")}
    assert {p.reservation_id for p in found.phantoms if p.order_id == "ord_gone"} == {gone}
    assert found.to_json()["phantoms"][0]["warehouse"] == "HZ1"

    report = repair(hub, actor.tenant_id)
    assert report.ok, report.after
    assert report.phantoms_closed == 4 and report.repairs == () and report.unrepaired == ()
    level = row(hub, actor.tenant_id)
    # 20 on hand − 5 shipped (consumed); only the open order still holds stock.
    assert (level.on_hand, level.reserved, level.available) == (15, 2, 13)
    assert reservation_statuses(hub, actor.tenant_id, cancelled) == ["released"]
    assert reservation_statuses(hub, actor.tenant_id, shipped) == ["consumed"]
    assert reservation_statuses(hub, actor.tenant_id, kept) == ["active"]
    assert list(ledger(hub, actor.tenant_id).values()) == [(15, 2, 0)]
    with hub.engine.connect() as conn:
        kinds = conn.execute(select(stock_movements.c.kind, func.count()).where(
            stock_movements.c.tenant_id == actor.tenant_id).group_by(stock_movements.c.kind)).all()
    assert {kind: int(n) for kind, n in kinds}["repair"] == 4
    trail = actions(hub, actor.tenant_id)
    assert trail.count("reservations.released") == 2 and trail.count("reservations.consumed") == 2
    assert all(broken is None for _, _, broken in hub.queries.verify_audit())
    assert check_inventory(hub.engine, actor.tenant_id).ok


def test_drift_is_repaired_through_audited_movements(hub: OrderHub, actor: Actor) -> None:
    hub.bus.handle(commands.PutRuleSet(actor=actor, kind="inventory_policy", body={
        "channel_feed": {"channels": [{"channel": "tmall", "primary": True}]}}))
    warehouse(hub, actor)
    stock(hub, actor, 10)
    stock(hub, actor, 7, sku="TEA-002")
    order(hub, actor, "W-1", 3)
    with hub.engine.begin() as conn:
        # reserved drifted up by 2 with no reservation behind it…
        conn.execute(update(stock_levels).where(stock_levels.c.sku == SKU).values(reserved=5))
        # …and TEA-002 lost a movement (a count written without its ledger line).
        conn.execute(update(stock_levels).where(stock_levels.c.sku == "TEA-002").values(on_hand=9))

    found = check_inventory(hub.engine, actor.tenant_id)
    assert found.phantoms == ()
    assert [(d.sku, d.bucket, d.row, d.reservations) for d in found.reserved_drift] == [(SKU, "stock", 5, 3)]
    assert sorted((d.sku, d.figure, d.row, d.movements) for d in found.ledger_drift) == [
        (SKU, "reserved", 5, 3), ("TEA-002", "on_hand", 9, 7)]

    report = repair(hub, actor.tenant_id)
    assert report.ok, report.after
    assert sorted((r.sku, r.reserved, r.movement) for r in report.repairs) == [
        (SKU, (5, 3), (0, 0, 0)), ("TEA-002", (0, 0), (2, 0, 0))]
    assert (row(hub, actor.tenant_id).reserved, row(hub, actor.tenant_id, "TEA-002").on_hand) == (3, 9)
    assert sorted(ledger(hub, actor.tenant_id).values()) == [(9, 0, 0), (10, 3, 0)]
    assert actions(hub, actor.tenant_id).count("stock.repair") == 2
    with hub.engine.connect() as conn:  # the repaired figures went out to the channel feed
        figures = conn.execute(select(channel_stock.c.sku, channel_stock.c.quantity)).all()
    assert sorted((sku, int(n)) for sku, n in figures) == [(SKU, 7), ("TEA-002", 9)]
    assert all(broken is None for _, _, broken in hub.queries.verify_audit())
    assert check_inventory(hub.engine, actor.tenant_id).ok


def test_reservations_beyond_on_hand_are_reported_not_forced(hub: OrderHub, actor: Actor) -> None:
    warehouse(hub, actor)
    stock(hub, actor, 4)
    kept = order(hub, actor, "W-1", 4)
    with hub.engine.begin() as conn:
        # A second reservation of 3 appears without the row knowing (4 on hand, 7 reserved).
        first = conn.execute(select(reservations).where(reservations.c.order_id == kept)).one()
        conn.execute(reservations.insert().values({**first._asdict(), "id": "rsv_extra", "quantity": 3}))
    found = check_inventory(hub.engine, actor.tenant_id)
    assert [(d.row, d.reservations) for d in found.reserved_drift] == [(4, 7)]
    report = repair(hub, actor.tenant_id)
    assert not report.ok
    assert len(report.unrepaired) == 1 and "7 units but only 4 are on hand" in report.unrepaired[0]
    level = row(hub, actor.tenant_id)
    assert (level.on_hand, level.reserved) == (4, 4)  # nothing forced past the CHECK constraints


def test_metric_rate_is_reserved_for_paid_unshipped_over_available(hub: OrderHub, actor: Actor) -> None:
    watch_inventory(hub.metrics.registry, lambda: stock_figures(hub.engine))
    assert hub.metrics.registry.get_sample_value("orderhub_phantom_reservation_rate",
                                                 {"tenant": actor.tenant_id}) is None
    warehouse(hub, actor)
    stock(hub, actor, 10)
    paid = order(hub, actor, "W-1", 2)
    order(hub, actor, "W-2", 2, status="pending_payment")       # unpaid: not counted
    shipped = order(hub, actor, "W-3", 1)
    event(hub, actor, shipped, "ship")                            # consumed: not counted
    sample = hub.metrics.registry.get_sample_value
    # 10 − 1 shipped = 9 on hand; 4 reserved → 5 available; 2 held for the paid order.
    assert sample("orderhub_stock_available_units", {"tenant": actor.tenant_id}) == 5
    assert sample("orderhub_phantom_reservation_rate", {"tenant": actor.tenant_id}) == pytest.approx(2 / 5)
    event(hub, actor, paid, "ready_to_ship")
    stock(hub, actor, 5)                                          # 5 on hand, 4 reserved: 1 available
    assert sample("orderhub_phantom_reservation_rate", {"tenant": actor.tenant_id}) == pytest.approx(2.0)
    stock(hub, actor, 4)                                          # nothing available: the rate is 0
    assert sample("orderhub_stock_available_units", {"tenant": actor.tenant_id}) == 0
    assert sample("orderhub_phantom_reservation_rate", {"tenant": actor.tenant_id}) == 0


def test_cli_check_json_exit_status_and_repair(hub: OrderHub, actor: Actor, settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERHUB_HOME", str(settings.home))
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", settings.database_url)
    cli = typer.Typer()
    group = typer.Typer()
    group.command("check")(inventory_check)
    cli.add_typer(group, name="inventory")
    runner = CliRunner()
    warehouse(hub, actor)
    stock(hub, actor, 10)
    doomed = order(hub, actor, "W-1", 3)

    clean = runner.invoke(cli, ["inventory", "check"])
    assert clean.exit_code == 0, clean.output
    assert "consistent" in clean.output

    with hub.engine.begin() as conn:
        conn.execute(delete(order_lines).where(order_lines.c.order_id == doomed))
        conn.execute(delete(orders).where(orders.c.id == doomed))
    shown = runner.invoke(cli, ["inventory", "check", "--tenant", "acme"])
    assert shown.exit_code == 1, shown.output
    assert "phantom" in shown.output and "gone" in shown.output  # (the table wraps long ids)
    listed = runner.invoke(cli, ["inventory", "check", "--json"])
    assert listed.exit_code == 1
    body = json.loads(listed.output)
    assert body["ok"] is False and body["repaired"] is False
    assert [p["order_id"] for p in body["tenants"][0]["phantoms"]] == [doomed]
    assert body["tenants"][0]["tenant"] == "acme"

    fixed = runner.invoke(cli, ["inventory", "check", "--repair", "--json"])
    assert fixed.exit_code == 0, fixed.output
    result = json.loads(fixed.output)["tenants"][0]
    assert result["phantoms_closed"] == 1 and result["remaining"]["ok"] is True
    assert row(hub, actor.tenant_id).reserved == 0
    again = runner.invoke(cli, ["inventory", "check", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["ok"] is True
    with hub.engine.connect() as conn:
        actor_names = set(conn.execute(select(stock_movements.c.actor).where(
            stock_movements.c.kind == "repair")).scalars())
    assert actor_names == {"cli"}

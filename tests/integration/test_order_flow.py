"""Order creation and events through the bus on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.errors import InvalidTransition
from orderhub.domain.orders.model import ApplyOutcome

PLACED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def create(hub: OrderHub, actor: commands.Actor, external_id: str = "WEB-1", **extra: object) -> str:
    cmd = commands.CreateOrder(actor=actor, channel="own_site", shop="main", external_id=external_id,
                               currency="CNY", status="pending_payment", placed_at=PLACED,
                               lines=(commands.LineInput("TEA-001", 2, "59.90"),), **extra)  # type: ignore[arg-type]
    return str(hub.bus.handle(cmd).order_id)


def event(hub: OrderHub, actor: commands.Actor, order_id: str, type_: str, key: str | None = None):  # type: ignore[no-untyped-def]
    return hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=order_id, type=type_, key=key))


def test_create_pay_ship_and_stale_event(hub: OrderHub, actor: commands.Actor) -> None:
    order_id = create(hub, actor)
    assert event(hub, actor, order_id, "mark_paid", key="pay-1").outcome is ApplyOutcome.APPLIED
    assert event(hub, actor, order_id, "mark_paid", key="pay-1").outcome is ApplyOutcome.DUPLICATE
    assert event(hub, actor, order_id, "ship").outcome is ApplyOutcome.APPLIED
    stale = event(hub, actor, order_id, "mark_paid", key="late-pay")
    assert stale.outcome is ApplyOutcome.IGNORED_STALE
    view = hub.queries.get_order(actor.tenant_id, order_id)
    assert view["status"] == "shipped"
    assert view["conflict_count"] == 1
    assert view["total"] == {"amount": 11980, "currency": "CNY"}
    actions = [i["action"] for i in hub.queries.timeline(actor.tenant_id, order_id)["items"]]
    assert actions == ["order.created", "order.mark_paid", "order.ship", "order.event_ignored_stale"]
    assert all(found is None for _, _, found in hub.queries.verify_audit())


def test_invalid_transition_changes_nothing(hub: OrderHub, actor: commands.Actor) -> None:
    order_id = create(hub, actor)
    before = hub.queries.get_order(actor.tenant_id, order_id)
    with pytest.raises(InvalidTransition):
        event(hub, actor, order_id, "deliver")
    assert hub.queries.get_order(actor.tenant_id, order_id) == before
    assert len(hub.queries.timeline(actor.tenant_id, order_id)["items"]) == 1

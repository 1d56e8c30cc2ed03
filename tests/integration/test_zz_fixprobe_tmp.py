import pytest
from orderhub.service_layer import inventory as inv
from tests.integration.test_stock_concurrency import *  # noqa

@pytest.fixture(autouse=True)
def _patch(monkeypatch):
    orig = inv.close_reservations
    def close(uow, order, target, *, now, reason=None):
        inv.reservation_transition(inv.ReservationStatus.ACTIVE, target)
        taken = uow.inventory.take_active(order.tenant_id, order.id, target, now=now)
        if taken:
            uow.inventory.lock_stock(order.tenant_id, skus={r.sku for r in taken})
            inv.give_back(uow, order.tenant_id, order.id, taken, target, now=now, reason=reason)
        return len(taken)
    monkeypatch.setattr(inv, "close_reservations", close)

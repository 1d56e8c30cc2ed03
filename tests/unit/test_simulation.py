"""The simulated orders behind the demo and the benchmarks."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from orderhub.simulation.orders import sample_order


def test_sample_orders_are_deterministic_and_never_in_the_future() -> None:
    for n in (0, 1, 999, 1_000_000, 12_345_678):
        a = sample_order(random.Random(7), n)
        assert a == sample_order(random.Random(7), n)
        placed = datetime.fromisoformat(a["placed_at"])
        assert datetime(2025, 1, 1, tzinfo=UTC) <= placed < datetime(2025, 11, 1, tzinfo=UTC)
        if a["status"] == "paid":
            assert datetime.fromisoformat(a["paid_at"]) >= placed

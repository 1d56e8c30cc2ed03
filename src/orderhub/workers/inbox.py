"""The inbox worker: runs the normalizer (service_layer/normalizer.py) batch by batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderhub.service_layer.normalizer import Normalizer
from orderhub.workers.outbox_relay import default_worker_id

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub


class InboxWorker:
    """Claims pending inbox messages and maps and applies them (a :class:`Worker`)."""

    name = "inbox"

    def __init__(self, hub: OrderHub, *, batch_size: int = 100, worker_id: str | None = None) -> None:
        self.normalizer = Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics,
                                     refund_policies=hub.refund_policies,
                                     worker_id=worker_id or default_worker_id("inbox"), batch_size=batch_size)

    def run_once(self) -> int:
        """Process one batch; returns how many messages were claimed."""
        return self.normalizer.run_once().claimed

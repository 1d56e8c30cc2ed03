"""The reservation expiry worker (issue 4 scope 8): gives back the stock of unpaid orders
whose reservations ran past ``expires_at``, a batch per pass.

Safe in several processes at once: on PostgreSQL due reservations are picked with
``FOR UPDATE SKIP LOCKED`` and taken with a conditional update (``take_active``), so two
expirers never release the same reservation twice; on SQLite the runner's worker lease
lets one process expire at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderhub.domain.commands import Actor
from orderhub.service_layer.inventory import expire_due

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub

WORKER_ACTOR = Actor(tenant_id="", actor="worker:reservations", source="worker")


class ReservationExpiryWorker:
    """Expires due reservations, up to ``batch_size`` orders per pass (a :class:`Worker`)."""

    name = "reservations"

    def __init__(self, hub: OrderHub, *, batch_size: int = 100) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._uow_factory = hub.uow_factory
        self._batch_size = batch_size

    def run_once(self) -> int:
        """Expire one batch in one transaction; returns how many orders gave stock back."""
        uow = self._uow_factory()
        uow.act_as(WORKER_ACTOR)
        return expire_due(uow, limit=self._batch_size)

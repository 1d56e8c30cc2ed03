"""Command handlers for the outbox (operator actions on outgoing messages)."""

from __future__ import annotations

from orderhub.domain.commands import RequeueDeadMessages
from orderhub.domain.events import DeadMessagesRequeued
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork


def requeue_dead_messages(cmd: RequeueDeadMessages, uow: SqlAlchemyUnitOfWork) -> int:
    """Requeue the tenant's dead messages; returns how many."""
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        count = uow.outbox.requeue_dead(cmd.actor.tenant_id, now=now)
        if count:
            uow.record(DeadMessagesRequeued(tenant_id=cmd.actor.tenant_id, count=count, occurred_at=now))
        uow.commit()
    return count

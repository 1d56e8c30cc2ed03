"""Reading a tenant's policy rule sets (inventory, fulfillment…): the newest stored version,
or the shipped default until the tenant stores its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog

from orderhub.adapters.rules import default_rule_set
from orderhub.domain.rules import RuleInvalid
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)
P = TypeVar("P")


def read_policy(uow: SqlAlchemyUnitOfWork, tenant_id: str, kind: str, parse: Callable[[Mapping[str, Any]], P]) -> P:
    """The tenant's policy of ``kind`` parsed by ``parse``. A stored body that no longer
    validates (an older release wrote it) reads as the shipped default: the defaults keep
    orders moving, and the rule set's own page shows the problem."""
    latest = uow.rules.latest(tenant_id, kind)
    if latest is not None:
        try:
            return parse(latest[1])
        except RuleInvalid:
            log.warning("policy_unusable", tenant_id=tenant_id, kind=kind, version=latest[0])
    return parse(default_rule_set(kind))

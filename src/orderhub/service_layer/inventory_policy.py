"""Reading a tenant's inventory policy (rule set kind ``inventory_policy``)."""

from __future__ import annotations

from orderhub.adapters.rules import default_rule_set
from orderhub.domain.inventory.policy import InventoryPolicy
from orderhub.domain.rules import RuleInvalid
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

POLICY_KIND = "inventory_policy"


def load_policy(uow: SqlAlchemyUnitOfWork, tenant_id: str) -> InventoryPolicy:
    """The tenant's current inventory policy (the shipped default until it stores its own)."""
    latest = uow.rules.latest(tenant_id, POLICY_KIND)
    body = latest[1] if latest is not None else default_rule_set(POLICY_KIND)
    try:
        return InventoryPolicy.from_mapping(body)
    except RuleInvalid:
        # A stored policy that no longer validates: the defaults are the safe reading (they
        # never allow partial reservations or longer holds than configured).
        return InventoryPolicy.from_mapping(default_rule_set(POLICY_KIND))

"""Reading a tenant's inventory policy (rule set kind ``inventory_policy``)."""

from __future__ import annotations

from orderhub.domain.inventory.policy import InventoryPolicy
from orderhub.service_layer.policies import read_policy
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

POLICY_KIND = "inventory_policy"


def load_policy(uow: SqlAlchemyUnitOfWork, tenant_id: str) -> InventoryPolicy:
    """The tenant's current inventory policy (the shipped default until it stores its own)."""
    return read_policy(uow, tenant_id, POLICY_KIND, InventoryPolicy.from_mapping)

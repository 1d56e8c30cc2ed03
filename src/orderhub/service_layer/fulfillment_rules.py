"""A tenant's fulfillment rule sets, read and compiled once per version: the fulfillment
policy, the carrier routing rules and the carrier code book with the tenant's overrides.

The caches are plain per-process maps keyed by tenant and checked against the stored
version on every use (one indexed read), so an edit through the API takes effect on the
next command without a restart."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

import structlog

from orderhub.adapters.carriers.code_tables import CARRIER_IDS, load_code_book
from orderhub.adapters.routing import CARRIER_ROUTING, CarrierRouting, compile_carrier_routing
from orderhub.adapters.rules import default_rule_set
from orderhub.domain.fulfillment.policy import FulfillmentPolicy
from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.codes import CodeBook, parse_overrides
from orderhub.service_layer.policies import read_policy
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

FULFILLMENT_POLICY = "fulfillment_policy"
CARRIER_CODES = "carrier_codes"


def load_fulfillment_policy(uow: SqlAlchemyUnitOfWork, tenant_id: str) -> FulfillmentPolicy:
    """The tenant's current fulfillment policy (the shipped default until it stores its own)."""
    return read_policy(uow, tenant_id, FULFILLMENT_POLICY, FulfillmentPolicy.from_mapping)


class _Compiled(ABC):
    """A per-tenant cache of one compiled rule set kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._by_tenant: dict[str, tuple[int, Any]] = {}

    def get(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> Any:
        latest = uow.rules.latest(tenant_id, self.kind)
        version, body = latest if latest is not None else (0, None)
        with self._lock:
            cached = self._by_tenant.get(tenant_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        compiled = self._compile(body, version)
        with self._lock:
            self._by_tenant[tenant_id] = (version, compiled)
        return compiled

    @abstractmethod
    def _compile(self, body: dict[str, Any] | None, version: int) -> Any:
        """Compile ``body`` (None: the tenant never stored one) at ``version``."""

    def clear(self) -> None:
        """Forget every compiled set (tests that rewrite rule sets under the same version)."""
        with self._lock:
            self._by_tenant.clear()


class RoutingRules(_Compiled):
    """The tenant's ``carrier_routing`` rule set, compiled."""

    def __init__(self) -> None:
        super().__init__(CARRIER_ROUTING)

    def _compile(self, body: dict[str, Any] | None, version: int) -> CarrierRouting:
        if body is not None:
            try:
                return compile_carrier_routing(body, version=version, known_carriers=CARRIER_IDS)
            except RuleInvalid as exc:
                log.warning("carrier_routing_unusable", version=version, error=exc.message)
        return compile_carrier_routing(default_rule_set(CARRIER_ROUTING), version=0, known_carriers=CARRIER_IDS)

    def for_tenant(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> CarrierRouting:
        """The routing rules the tenant's shipments are planned with now."""
        routing: CarrierRouting = self.get(uow, tenant_id)
        return routing


class CodeBooks(_Compiled):
    """The built-in carrier code tables with each tenant's ``carrier_codes`` overrides."""

    def __init__(self, base: CodeBook | None = None) -> None:
        super().__init__(CARRIER_CODES)
        self._base = base

    @property
    def base(self) -> CodeBook:
        """The built-in tables (loaded once)."""
        if self._base is None:
            self._base = load_code_book()
        return self._base

    def _compile(self, body: dict[str, Any] | None, version: int) -> CodeBook:
        if body is None:
            return self.base
        try:
            return self.base.with_overrides(parse_overrides(body, known_carriers=self.base.carriers()))
        except RuleInvalid as exc:
            log.warning("carrier_codes_unusable", version=version, error=exc.message)
            return self.base

    def for_tenant(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> CodeBook:
        """The code book the tenant's carrier events are read with now."""
        book: CodeBook = self.get(uow, tenant_id)
        return book

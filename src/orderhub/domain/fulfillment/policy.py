"""A tenant's fulfillment policy (rule set kind ``fulfillment_policy``): whether paid orders
are fulfilled automatically, parcel weights and the weighing tolerance, barcodes, stall
thresholds, the account lock for handhelds, how often carriers are polled and the
after-sale window after which delivered orders are completed.

Stored and versioned like every rule set; :meth:`FulfillmentPolicy.from_mapping` validates
a body and names the field at fault."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orderhub.domain.errors import DomainError
from orderhub.domain.fulfillment.devices import AccountLockPolicy
from orderhub.domain.fulfillment.scanning import WeightTolerance
from orderhub.domain.fulfillment.stalls import StallPolicy
from orderhub.domain.rules import RuleInvalid

KNOWN_KEYS = frozenset({"auto_fulfil", "aftersale_window_days", "default_item_weight_g", "sku_weights_g",
                        "barcodes", "weight_tolerance", "stall_hours", "account_lock", "tracking_poll_minutes"})
MAX_WEIGHT_G = 1_000_000
MAX_WINDOW_DAYS = 365


def _whole(value: object, where: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleInvalid(f"{where}: a whole number from {low} to {high}, got {value!r}", field=where)
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleInvalid(f"{where}: must be an object", field=where)
    return value


def _nested(where: str, build: Any, value: object) -> Any:
    """Build a nested policy part, re-raising its errors with the full field path."""
    try:
        return build(_mapping(value, where))
    except RuleInvalid:
        raise
    except DomainError as exc:
        path = exc.field or ""
        full = path if path.startswith(where) else f"{where}.{path}".rstrip(".")
        message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
        raise RuleInvalid(message, field=full) from exc


@dataclass(frozen=True, slots=True)
class FulfillmentPolicy:
    """The parsed policy (defaults: ``rules_defaults/fulfillment_policy.yaml``)."""

    auto_fulfil: bool = True
    aftersale_window: timedelta = timedelta(days=7)
    default_item_weight_g: int = 300
    sku_weights_g: Mapping[str, int] = field(default_factory=dict)
    barcodes: Mapping[str, str] = field(default_factory=dict)
    weight_tolerance: WeightTolerance = field(default_factory=WeightTolerance)
    stalls: StallPolicy = field(default_factory=lambda: StallPolicy.from_mapping({}))
    account_lock: AccountLockPolicy = field(default_factory=AccountLockPolicy)
    tracking_poll: timedelta = timedelta(minutes=30)

    def unit_weight_g(self, sku: str) -> int:
        """What one unit of ``sku`` weighs, in grams (the SKU's own figure or the default)."""
        return self.sku_weights_g.get(sku, self.default_item_weight_g)

    def barcode_for(self, sku: str) -> str | None:
        """The barcode printed on ``sku`` when it isn't the SKU itself."""
        for barcode, target in self.barcodes.items():
            if target == sku:
                return barcode
        return None

    @staticmethod
    def from_mapping(body: Mapping[str, Any]) -> FulfillmentPolicy:
        """Validate a policy body; RuleInvalid names the offending field."""
        body = _mapping(body, "")
        unknown = sorted(set(body) - KNOWN_KEYS)
        if unknown:
            raise RuleInvalid(f"{unknown[0]}: unknown key; expected some of {', '.join(sorted(KNOWN_KEYS))}",
                              field=unknown[0])
        auto = body.get("auto_fulfil", True)
        if not isinstance(auto, bool):
            raise RuleInvalid(f"auto_fulfil: true or false, got {auto!r}", field="auto_fulfil")
        weights = _mapping(body.get("sku_weights_g", {}) or {}, "sku_weights_g")
        barcodes = _mapping(body.get("barcodes", {}) or {}, "barcodes")
        for code, sku in barcodes.items():
            if not isinstance(sku, str) or not sku.strip():
                raise RuleInvalid(f"barcodes.{code}: the SKU this barcode is printed on, got {sku!r}",
                                  field=f"barcodes.{code}")
        tolerance = _mapping(body.get("weight_tolerance", {}) or {}, "weight_tolerance")
        lock = _mapping(body.get("account_lock", {}) or {}, "account_lock")
        return FulfillmentPolicy(
            auto_fulfil=auto,
            aftersale_window=timedelta(days=_whole(body.get("aftersale_window_days", 7), "aftersale_window_days",
                                                   low=0, high=MAX_WINDOW_DAYS)),
            default_item_weight_g=_whole(body.get("default_item_weight_g", 300), "default_item_weight_g",
                                         low=0, high=MAX_WEIGHT_G),
            sku_weights_g={str(sku): _whole(g, f"sku_weights_g.{sku}", low=0, high=MAX_WEIGHT_G)
                           for sku, g in weights.items()},
            barcodes={str(code): str(sku) for code, sku in barcodes.items()},
            weight_tolerance=_nested("weight_tolerance", WeightTolerance.from_mapping, tolerance),
            stalls=_nested("stall_hours", StallPolicy.from_mapping, body.get("stall_hours", {}) or {}),
            account_lock=_nested("account_lock", AccountLockPolicy.from_mapping, lock),
            tracking_poll=timedelta(minutes=_whole(body.get("tracking_poll_minutes", 30), "tracking_poll_minutes",
                                                   low=1, high=24 * 60)),
        )

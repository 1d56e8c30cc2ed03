"""Warehouse allocation: which warehouse(s) serve an order, chosen by an explainable
weighted score (issue 4, scope item 5).

Every warehouse gets four factors on a 0..1000 scale:

* ``distance`` — how close it is to the buyer's city: great-circle distance when both sides
  have a point (the warehouse's own coordinates, or the built-in table in :mod:`.geo` for
  Chinese cities and provinces), scored linearly from 1000 at 0 km to 0 at
  :data:`DISTANCE_ZERO_KM`; otherwise same city / same province / same country heuristics;
* ``cover`` — the share of the order's units it can serve from its available stock;
* ``on_time`` — its on-time history, ``on_time_permille``;
* ``cost`` — its handling cost relative to the cheapest warehouse (cheapest × 1000 ÷ own).

Each factor is weighted by a percentage (:class:`AllocationWeights`, summing to 100); a
candidate's ``parts`` are the weighted factors (``factor × weight ÷ 100``, floored) and its
``score`` is their sum, so the stored plan explains every number. All arithmetic is integer
and deterministic: candidates rank by score, ties broken by warehouse code.

A single warehouse that can serve every line always wins over a split. Only when none can,
and the tenant allows it, lines are split greedily across warehouses in rank order; what no
warehouse can cover is a shortfall (the caller holds the order ``out_of_stock``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orderhub.domain.errors import DomainError, InvalidOrder, InvalidStock
from orderhub.domain.inventory.geo import (
    Located,
    Precision,
    find_province,
    haversine_km,
    is_china,
    locate,
    normalize_place_name,
)

if TYPE_CHECKING:
    from orderhub.domain.orders.model import Address

SCALE = 1000
# Distance at which the distance factor reaches zero (roughly Harbin to Guangzhou / Ürümqi to Xi'an).
DISTANCE_ZERO_KM = 3000
# Distance factors when no two points can be compared.
SAME_CITY = 1000
SAME_PROVINCE = 700
SAME_COUNTRY = 400
UNKNOWN_DISTANCE = 0

FACTORS = ("distance", "cover", "on_time", "cost")
MAX_LAT_E6 = 90_000_000
MAX_LON_E6 = 180_000_000


class InvalidAllocationPolicy(DomainError):
    """Allocation weights or a warehouse profile are malformed (weights not whole
    percentages summing to 100, unknown weight, duplicate warehouse code, on-time rate
    outside 0..1000‰, negative handling cost, coordinates off the globe)."""

    code = "invalid_allocation_policy"


@dataclass(frozen=True, slots=True)
class WarehouseProfile:
    """What allocation knows of a warehouse: where it is, how reliably and how cheaply it ships.

    ``lat_e6`` / ``lon_e6`` are millionths of a degree; when either is missing, the
    warehouse's city (or province) is looked up in the built-in table instead.
    ``on_time_permille`` is the share of its shipments handed over on time (1000 = all);
    ``handling_cost_minor`` is its handling cost per order in minor units of the tenant's
    currency (only compared between warehouses, never added to money).
    """

    code: str
    province: str | None
    city: str | None
    lat_e6: int | None
    lon_e6: int | None
    on_time_permille: int = 1000
    handling_cost_minor: int = 0


@dataclass(frozen=True, slots=True)
class AllocationWeights:
    """How much each factor counts, in whole percentages summing to 100.

    Defaults follow issue 4: distance 40 %, stock cover 30 %, on-time history 20 %,
    handling cost 10 %. Constructing invalid weights raises InvalidAllocationPolicy.
    """

    distance: int = 40
    cover: int = 30
    on_time: int = 20
    cost: int = 10

    def __post_init__(self) -> None:
        for name in FACTORS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InvalidAllocationPolicy(f"allocation_weights.{name}: a whole percentage from 0 to 100, "
                                              f"got {value!r}", field=f"allocation_weights.{name}")
        total = self.distance + self.cover + self.on_time + self.cost
        if total != 100:
            raise InvalidAllocationPolicy(f"allocation_weights: the weights must add up to 100, they add up to "
                                          f"{total}", field="allocation_weights")

    @staticmethod
    def from_mapping(data: Mapping[str, object]) -> AllocationWeights:
        """Weights from a tenant policy's ``allocation_weights`` object.

        An empty mapping means "no preference" and gives the defaults. Otherwise keys are
        some of ``distance``, ``cover``, ``on_time``, ``cost``; a key left out weighs 0, and
        the weights given must add up to 100. Raises InvalidAllocationPolicy naming the field
        (``allocation_weights.<key>``) for an unknown key or a value that isn't a whole
        percentage.
        """
        if not isinstance(data, Mapping):
            raise InvalidAllocationPolicy("allocation_weights: must be an object", field="allocation_weights")
        if not data:
            return AllocationWeights()
        for key in data:
            if key not in FACTORS:
                raise InvalidAllocationPolicy(f"allocation_weights.{key}: unknown weight; expected some of "
                                              f"{', '.join(FACTORS)}", field=f"allocation_weights.{key}")
        values: dict[str, int] = {}
        for name in FACTORS:
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidAllocationPolicy(f"allocation_weights.{name}: a whole percentage from 0 to 100, "
                                              f"got {value!r}", field=f"allocation_weights.{name}")
            values[name] = value
        return AllocationWeights(**values)

    def to_json(self) -> dict[str, int]:
        """The weights as a JSON object."""
        return {name: getattr(self, name) for name in FACTORS}


@dataclass(frozen=True, slots=True)
class LineDemand:
    """``quantity`` units of ``sku`` wanted by order line ``line_no``."""

    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the order goes, as far as distance scoring cares."""

    country: str | None
    province: str | None
    city: str | None

    @staticmethod
    def from_address(address: Address) -> Destination:
        """The destination of a shipping address."""
        return Destination(address.country, address.province, address.city)


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """One warehouse's score, with its parts and how they came about.

    ``parts`` holds each factor's weighted contribution (0..1000 scale; ``score`` is their
    sum); ``factors`` holds the unweighted factors (0..1000 each); ``distance_km`` is the
    great-circle distance when one was computed; ``note`` says in words how each factor was
    found.
    """

    warehouse: str
    score: int
    parts: Mapping[str, int]
    serves_all: bool
    note: str
    factors: Mapping[str, int] = field(default_factory=dict)
    distance_km: int | None = None

    def to_json(self) -> dict[str, object]:
        """The candidate as a JSON object."""
        return {"warehouse": self.warehouse, "score": self.score, "parts": dict(self.parts),
                "factors": dict(self.factors), "distance_km": self.distance_km, "serves_all": self.serves_all,
                "note": self.note}


@dataclass(frozen=True, slots=True)
class Assignment:
    """``quantity`` units of line ``line_no`` (``sku``) to be served from ``warehouse``."""

    line_no: int
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    """The chosen assignments, every candidate's score (best first) and what is missing.

    ``split`` is true when the assignments use more than one warehouse; ``shortfalls`` are
    ``(line_no, sku, missing quantity)`` for units no warehouse could cover; ``reason`` says
    in words why this plan was chosen.
    """

    assignments: tuple[Assignment, ...]
    candidates: tuple[CandidateScore, ...]
    split: bool
    shortfalls: tuple[tuple[int, str, int], ...]
    reason: str = ""
    weights: AllocationWeights = field(default_factory=AllocationWeights)

    @property
    def complete(self) -> bool:
        """True when every unit of every line is assigned (no shortfalls)."""
        return not self.shortfalls

    @property
    def warehouses(self) -> tuple[str, ...]:
        """The warehouses the assignments use, in the order they first appear."""
        return tuple(dict.fromkeys(a.warehouse for a in self.assignments))

    def to_json(self) -> dict[str, object]:
        """The plan as JSON-safe data, for storing with the order and showing in its timeline;
        :meth:`from_json` reads it back."""
        return {
            "assignments": [{"line_no": a.line_no, "sku": a.sku, "warehouse": a.warehouse, "quantity": a.quantity}
                            for a in self.assignments],
            "candidates": [c.to_json() for c in self.candidates],
            "split": self.split,
            "complete": self.complete,
            "shortfalls": [{"line_no": line_no, "sku": sku, "missing": missing}
                           for line_no, sku, missing in self.shortfalls],
            "reason": self.reason,
            "weights": self.weights.to_json(),
        }

    @staticmethod
    def from_json(data: Mapping[str, object]) -> AllocationPlan:
        """A plan from :meth:`to_json`'s output (e.g. as stored with an order)."""
        assignments = _objects(data, "assignments")
        candidates = _objects(data, "candidates")
        shortfalls = _objects(data, "shortfalls")
        weights = data.get("weights", {})
        return AllocationPlan(
            assignments=tuple(Assignment(_int(a, "line_no"), _str(a, "sku"), _str(a, "warehouse"),
                                         _int(a, "quantity")) for a in assignments),
            candidates=tuple(CandidateScore(
                warehouse=_str(c, "warehouse"), score=_int(c, "score"), parts=_int_map(c, "parts"),
                serves_all=bool(c.get("serves_all")), note=str(c.get("note", "")), factors=_int_map(c, "factors"),
                distance_km=None if c.get("distance_km") is None else _int(c, "distance_km"),
            ) for c in candidates),
            split=bool(data.get("split")),
            shortfalls=tuple((_int(s, "line_no"), _str(s, "sku"), _int(s, "missing")) for s in shortfalls),
            reason=str(data.get("reason", "")),
            weights=AllocationWeights.from_mapping(weights) if isinstance(weights, Mapping) else AllocationWeights(),
        )


def _objects(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise InvalidAllocationPolicy(f"{key}: a list expected in a stored allocation plan", field=key)
    found: list[Mapping[str, object]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidAllocationPolicy(f"{key}[{i}]: an object expected in a stored allocation plan",
                                          field=f"{key}[{i}]")
        found.append(item)
    return found


def _int(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAllocationPolicy(f"{key}: a whole number expected in a stored allocation plan, got {value!r}",
                                      field=key)
    return value


def _str(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidAllocationPolicy(f"{key}: a string expected in a stored allocation plan, got {value!r}",
                                      field=key)
    return value


def _int_map(data: Mapping[str, object], key: str) -> Mapping[str, int]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InvalidAllocationPolicy(f"{key}: an object expected in a stored allocation plan", field=key)
    return {str(name): _int(value, name) for name in value}


# --------------------------------------------------------------------------- factors
@dataclass(frozen=True, slots=True)
class _Distance:
    factor: int
    km: int | None
    how: str


def _distance_factor_from_km(km: int) -> int:
    """1000 at 0 km, falling linearly to 0 at DISTANCE_ZERO_KM and beyond."""
    return max(0, (DISTANCE_ZERO_KM - km) * SCALE // DISTANCE_ZERO_KM)


def _same_province(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    pa, pb = find_province(a), find_province(b)
    if pa is not None or pb is not None:
        return pa is not None and pb is not None and pa.name == pb.name
    na, nb = normalize_place_name(a), normalize_place_name(b)
    return na is not None and na == nb


def _same_city(destination: Destination, warehouse: WarehouseProfile) -> bool:
    a, b = normalize_place_name(destination.city), normalize_place_name(warehouse.city)
    if a is None or a != b:
        return False
    # The same city name in two different provinces is not the same city.
    return (destination.province is None or warehouse.province is None
            or _same_province(destination.province, warehouse.province))


def _warehouse_point(warehouse: WarehouseProfile) -> tuple[int, int, str] | None:
    if warehouse.lat_e6 is not None and warehouse.lon_e6 is not None:
        return warehouse.lat_e6, warehouse.lon_e6, "warehouse coordinates"
    found = locate(warehouse.province, warehouse.city)
    if found is None:
        return None
    return found.city.lat_e6, found.city.lon_e6, _describe(found)


def _describe(found: Located) -> str:
    if found.precision is Precision.CITY:
        return f"table city {found.city.name}"
    return f"table capital {found.city.name} of {found.city.province}"


def _distance(destination: Destination, warehouse: WarehouseProfile) -> _Distance:
    # The table covers mainland China; a destination with no country is tried against it too.
    chinese = destination.country is None or is_china(destination.country)
    target = locate(destination.province, destination.city) if chinese else None
    origin = _warehouse_point(warehouse)
    if target is not None and origin is not None and (
            target.precision is Precision.CITY or not _same_city(destination, warehouse)):
        km = haversine_km(origin[0], origin[1], target.city.lat_e6, target.city.lon_e6)
        return _Distance(_distance_factor_from_km(km), km, f"{km} km ({origin[2]} → {_describe(target)})")
    if _same_city(destination, warehouse):
        return _Distance(SAME_CITY, None, "same city")
    if _same_province(destination.province, warehouse.province):
        return _Distance(SAME_PROVINCE, None, "same province")
    if is_china(destination.country) and locate(warehouse.province, warehouse.city) is not None:
        return _Distance(SAME_COUNTRY, None, "same country")
    return _Distance(UNKNOWN_DISTANCE, None, "distance unknown")


def _demand_by_sku(lines: Sequence[LineDemand]) -> dict[str, int]:
    demand: dict[str, int] = {}
    for line in lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    return demand


def _stock(available: Mapping[tuple[str, str], int], warehouse: str, sku: str) -> int:
    return available.get((warehouse, sku), 0)


# --------------------------------------------------------------------------- validation
def _check_lines(lines: Sequence[LineDemand]) -> None:
    if not lines:
        raise InvalidOrder("lines: an order needs at least one line to allocate", field="lines")
    seen: set[int] = set()
    for i, line in enumerate(lines):
        if line.line_no in seen:
            raise InvalidOrder(f"lines[{i}].line_no: line {line.line_no} appears twice", field=f"lines[{i}].line_no")
        seen.add(line.line_no)
        if not line.sku or not line.sku.strip():
            raise InvalidOrder(f"lines[{i}].sku: must not be blank", field=f"lines[{i}].sku")
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity <= 0:
            raise InvalidOrder(f"lines[{i}].quantity: must be a positive whole number, got {line.quantity!r}",
                               field=f"lines[{i}].quantity")


def _check_warehouses(warehouses: Sequence[WarehouseProfile]) -> None:
    seen: set[str] = set()
    for i, w in enumerate(warehouses):
        where = f"warehouses[{i}]"
        if not w.code or not w.code.strip():
            raise InvalidAllocationPolicy(f"{where}.code: must not be blank", field=f"{where}.code")
        if w.code in seen:
            raise InvalidAllocationPolicy(f"{where}.code: warehouse {w.code!r} appears twice", field=f"{where}.code")
        seen.add(w.code)
        if not 0 <= w.on_time_permille <= SCALE:
            raise InvalidAllocationPolicy(f"{where}.on_time_permille: from 0 to 1000, got {w.on_time_permille}",
                                          field=f"{where}.on_time_permille")
        if w.handling_cost_minor < 0:
            raise InvalidAllocationPolicy(f"{where}.handling_cost_minor: must not be negative, got "
                                          f"{w.handling_cost_minor}", field=f"{where}.handling_cost_minor")
        if w.lat_e6 is not None and not -MAX_LAT_E6 <= w.lat_e6 <= MAX_LAT_E6:
            raise InvalidAllocationPolicy(f"{where}.lat_e6: must be within ±90 degrees, got {w.lat_e6}",
                                          field=f"{where}.lat_e6")
        if w.lon_e6 is not None and not -MAX_LON_E6 <= w.lon_e6 <= MAX_LON_E6:
            raise InvalidAllocationPolicy(f"{where}.lon_e6: must be within ±180 degrees, got {w.lon_e6}",
                                          field=f"{where}.lon_e6")


def _check_available(available: Mapping[tuple[str, str], int]) -> None:
    for (warehouse, sku), units in available.items():
        if units < 0:
            raise InvalidStock(f"available: {sku} in {warehouse} is {units}; available stock is never negative",
                               field="available")


# --------------------------------------------------------------------------- scoring and planning
DEFAULT_WEIGHTS = AllocationWeights()


def score_candidates(lines: Sequence[LineDemand], available: Mapping[tuple[str, str], int],
                     warehouses: Sequence[WarehouseProfile], destination: Destination, *,
                     weights: AllocationWeights = DEFAULT_WEIGHTS) -> tuple[CandidateScore, ...]:
    """Score every warehouse for this order; best first (score descending, then code)."""
    demand = _demand_by_sku(lines)
    total_units = sum(demand.values())
    cheapest = min((w.handling_cost_minor for w in warehouses), default=0)
    scored: list[CandidateScore] = []
    for w in warehouses:
        distance = _distance(destination, w)
        servable = sum(min(units, _stock(available, w.code, sku)) for sku, units in demand.items())
        cover = servable * SCALE // total_units
        cost = SCALE if w.handling_cost_minor == 0 else cheapest * SCALE // w.handling_cost_minor
        factors = {"distance": distance.factor, "cover": cover, "on_time": w.on_time_permille, "cost": cost}
        parts = {name: factors[name] * getattr(weights, name) // 100 for name in FACTORS}
        note = (f"distance {distance.factor}: {distance.how}; cover {cover}: {servable} of {total_units} units; "
                f"on time {w.on_time_permille}‰; cost {cost}: handling {w.handling_cost_minor} vs cheapest {cheapest}")
        scored.append(CandidateScore(warehouse=w.code, score=sum(parts.values()), parts=parts,
                                     serves_all=servable == total_units, note=note, factors=factors,
                                     distance_km=distance.km))
    scored.sort(key=lambda c: (-c.score, c.warehouse))
    return tuple(scored)


def plan_allocation(lines: Sequence[LineDemand], available: Mapping[tuple[str, str], int],
                    warehouses: Sequence[WarehouseProfile], destination: Destination, *,
                    weights: AllocationWeights = DEFAULT_WEIGHTS, allow_split: bool = False) -> AllocationPlan:
    """Choose the warehouse(s) that serve an order.

    ``available`` maps (warehouse code, sku) to the units that may still be reserved there
    (missing pairs count as 0). Rules, in order:

    1. The best-scoring warehouse that can serve every line alone gets the whole order.
    2. Otherwise, when ``allow_split``: lines (by ``line_no``) are served greedily from the
       warehouses in rank order, a line's quantity split across warehouses where needed.
    3. Otherwise: the best-scoring warehouse that has any of the order's stock gets what it
       can (none when no warehouse has any).

    Whatever is left uncovered is a shortfall. Every candidate's score is in the plan.
    Raises InvalidOrder for malformed lines, InvalidAllocationPolicy for malformed
    warehouses and InvalidStock for negative availability.
    """
    _check_lines(lines)
    _check_warehouses(warehouses)
    _check_available(available)
    candidates = score_candidates(lines, available, warehouses, destination, weights=weights)
    ordered = sorted(lines, key=lambda line: line.line_no)

    single = next((c for c in candidates if c.serves_all), None)
    if single is not None:
        assignments = tuple(Assignment(line.line_no, line.sku, single.warehouse, line.quantity) for line in ordered)
        return AllocationPlan(assignments, candidates, split=False, shortfalls=(), weights=weights,
                              reason=f"{single.warehouse} can serve every line; it scores best among those that can")

    if allow_split:
        pool = [c.warehouse for c in candidates]
        reason = "no single warehouse can serve every line; lines split across warehouses in score order"
    else:
        demand = _demand_by_sku(lines)
        best = next((c for c in candidates
                     if any(_stock(available, c.warehouse, sku) > 0 for sku in demand)), None)
        pool = [best.warehouse] if best is not None else []
        reason = ("no single warehouse can serve every line and splitting is not allowed; "
                  + (f"{best.warehouse}, the best-scoring warehouse with stock, gets what it can" if best is not None
                     else "no warehouse has any of the stock"))

    left = {key: units for key, units in available.items() if units > 0}
    chosen: list[Assignment] = []
    shortfalls: list[tuple[int, str, int]] = []
    for line in ordered:
        wanted = line.quantity
        for code in pool:
            if wanted == 0:
                break
            take = min(wanted, left.get((code, line.sku), 0))
            if take > 0:
                chosen.append(Assignment(line.line_no, line.sku, code, take))
                left[(code, line.sku)] -= take
                wanted -= take
        if wanted > 0:
            shortfalls.append((line.line_no, line.sku, wanted))
    used = {a.warehouse for a in chosen}
    return AllocationPlan(tuple(chosen), candidates, split=len(used) > 1, shortfalls=tuple(shortfalls),
                          reason=reason, weights=weights)

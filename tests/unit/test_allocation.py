"""Warehouse allocation: the explainable score, single warehouse before split, splitting only
when allowed, shortfalls, the distance table, and the plan's JSON form."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderhub.domain.errors import InvalidOrder, InvalidStock
from orderhub.domain.inventory import geo
from orderhub.domain.inventory.allocation import (
    SAME_CITY,
    SAME_COUNTRY,
    SAME_PROVINCE,
    AllocationPlan,
    AllocationWeights,
    Assignment,
    Destination,
    InvalidAllocationPolicy,
    LineDemand,
    WarehouseProfile,
    plan_allocation,
)
from orderhub.domain.orders.model import Address

SUZHOU = Destination("CN", "江苏省", "苏州市")


def wh(code: str, province: str | None = None, city: str | None = None, *, lat_e6: int | None = None,
       lon_e6: int | None = None, on_time: int = 1000, cost: int = 0) -> WarehouseProfile:
    return WarehouseProfile(code, province, city, lat_e6, lon_e6, on_time_permille=on_time, handling_cost_minor=cost)


SHANGHAI_WH = wh("SH", "上海", "上海市")
GUANGZHOU_WH = wh("GZ", "广东省", "广州市")
CHENGDU_WH = wh("CD", "四川省", "成都市")


def by_code(plan: AllocationPlan) -> dict[str, int]:
    return {c.warehouse: c.score for c in plan.candidates}


# --------------------------------------------------------------------------- single warehouse first
def test_a_single_warehouse_that_serves_everything_beats_a_better_scoring_split() -> None:
    lines = [LineDemand(1, "A", 2), LineDemand(2, "B", 1)]
    available = {("SH", "A"): 5, ("GZ", "A"): 5, ("GZ", "B"): 1}   # Shanghai is near but has no B
    plan = plan_allocation(lines, available, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU, allow_split=True)
    assert plan.candidates[0].warehouse == "SH"            # Shanghai scores best…
    assert not plan.candidates[0].serves_all
    assert plan.assignments == (Assignment(1, "A", "GZ", 2), Assignment(2, "B", "GZ", 1))   # …Guangzhou serves
    assert not plan.split
    assert plan.complete and plan.shortfalls == ()
    assert "GZ can serve every line" in plan.reason


def test_among_warehouses_that_serve_everything_the_best_score_wins() -> None:
    lines = [LineDemand(1, "A", 1)]
    available = {("SH", "A"): 1, ("GZ", "A"): 1, ("CD", "A"): 1}
    plan = plan_allocation(lines, available, [CHENGDU_WH, GUANGZHOU_WH, SHANGHAI_WH], SUZHOU)
    assert [c.warehouse for c in plan.candidates] == ["SH", "GZ", "CD"]      # by distance from Suzhou
    assert plan.assignments == (Assignment(1, "A", "SH", 1),)


def test_equal_scores_are_broken_by_warehouse_code() -> None:
    twins = [wh("WH-B", "上海", "上海"), wh("WH-A", "上海", "上海")]
    plan = plan_allocation([LineDemand(1, "A", 1)], {("WH-A", "A"): 1, ("WH-B", "A"): 1}, twins, SUZHOU)
    assert plan.candidates[0].score == plan.candidates[1].score
    assert [c.warehouse for c in plan.candidates] == ["WH-A", "WH-B"]
    assert plan.assignments[0].warehouse == "WH-A"


def test_lines_of_the_same_sku_share_a_warehouse_stock() -> None:
    lines = [LineDemand(1, "A", 3), LineDemand(2, "A", 3)]
    plan = plan_allocation(lines, {("SH", "A"): 5, ("GZ", "A"): 6}, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU)
    shanghai = next(c for c in plan.candidates if c.warehouse == "SH")
    assert not shanghai.serves_all and shanghai.factors["cover"] == 833    # 5 of 6 units
    assert {a.warehouse for a in plan.assignments} == {"GZ"}


# --------------------------------------------------------------------------- split and shortfalls
SPLIT_LINES = [LineDemand(1, "A", 2), LineDemand(2, "B", 3)]
SPLIT_STOCK = {("SH", "A"): 2, ("GZ", "B"): 3}


def test_without_split_the_best_warehouse_with_stock_gets_what_it_can() -> None:
    plan = plan_allocation(SPLIT_LINES, SPLIT_STOCK, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU, allow_split=False)
    assert plan.assignments == (Assignment(1, "A", "SH", 2),)
    assert plan.shortfalls == ((2, "B", 3),)
    assert not plan.split and not plan.complete
    assert "splitting is not allowed" in plan.reason


def test_split_happens_only_when_allowed_and_no_single_warehouse_can_serve() -> None:
    plan = plan_allocation(SPLIT_LINES, SPLIT_STOCK, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU, allow_split=True)
    assert plan.assignments == (Assignment(1, "A", "SH", 2), Assignment(2, "B", "GZ", 3))
    assert plan.split and plan.complete
    assert plan.warehouses == ("SH", "GZ")


def test_a_line_is_split_across_warehouses_in_score_order() -> None:
    available = {("SH", "A"): 3, ("GZ", "A"): 4, ("CD", "A"): 4}
    plan = plan_allocation([LineDemand(7, "A", 5)], available,
                           [CHENGDU_WH, GUANGZHOU_WH, SHANGHAI_WH], SUZHOU, allow_split=True)
    assert plan.assignments == (Assignment(7, "A", "SH", 3), Assignment(7, "A", "GZ", 2))
    assert plan.complete and plan.split


def test_what_no_warehouse_can_cover_is_a_shortfall_when_splitting() -> None:
    plan = plan_allocation([LineDemand(1, "A", 10), LineDemand(2, "B", 1)], {("SH", "A"): 3, ("GZ", "A"): 4},
                           [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU, allow_split=True)
    assert plan.assignments == (Assignment(1, "A", "SH", 3), Assignment(1, "A", "GZ", 4))
    assert plan.shortfalls == ((1, "A", 3), (2, "B", 1))
    assert not plan.complete


def test_with_no_stock_anywhere_everything_is_short() -> None:
    plan = plan_allocation([LineDemand(1, "A", 2)], {}, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU)
    assert plan.assignments == ()
    assert plan.shortfalls == ((1, "A", 2),)
    assert len(plan.candidates) == 2 and all(c.factors["cover"] == 0 for c in plan.candidates)
    assert "no warehouse has any of the stock" in plan.reason


def test_with_no_warehouses_everything_is_short() -> None:
    plan = plan_allocation([LineDemand(1, "A", 2)], {("SH", "A"): 9}, [], SUZHOU, allow_split=True)
    assert plan.assignments == () and plan.candidates == ()
    assert plan.shortfalls == ((1, "A", 2),)


def test_without_split_a_stockless_top_scorer_is_passed_over() -> None:
    # Cover weighs nothing, so the empty Shanghai warehouse ranks first; Guangzhou has the stock.
    weights = AllocationWeights(distance=70, cover=0, on_time=20, cost=10)
    plan = plan_allocation(SPLIT_LINES, {("GZ", "B"): 1}, [SHANGHAI_WH, GUANGZHOU_WH], SUZHOU, weights=weights)
    assert plan.candidates[0].warehouse == "SH"
    assert plan.assignments == (Assignment(2, "B", "GZ", 1),)
    assert plan.shortfalls == ((1, "A", 2), (2, "B", 2))


# --------------------------------------------------------------------------- the score
def test_the_score_is_the_sum_of_weighted_integer_parts() -> None:
    warehouses = [wh("SH", "上海", "上海", on_time=950, cost=120), wh("GZ", "广东", "广州", on_time=990, cost=100)]
    plan = plan_allocation([LineDemand(1, "A", 2), LineDemand(2, "B", 1)],
                           {("SH", "A"): 2, ("GZ", "A"): 2, ("GZ", "B"): 1}, warehouses, SUZHOU)
    sh = next(c for c in plan.candidates if c.warehouse == "SH")
    assert sh.factors["cover"] == 666                      # 2 of 3 units, floored
    assert sh.factors["on_time"] == 950
    assert sh.factors["cost"] == 833                       # 100 × 1000 ÷ 120, floored
    assert sh.distance_km is not None
    assert sh.factors["distance"] == (3000 - sh.distance_km) * 1000 // 3000
    assert sh.parts == {"distance": sh.factors["distance"] * 40 // 100, "cover": 199, "on_time": 190, "cost": 83}
    for candidate in plan.candidates:
        assert candidate.score == sum(candidate.parts.values())
        assert 0 <= candidate.score <= 1000
        assert all(isinstance(v, int) for v in (*candidate.parts.values(), *candidate.factors.values()))
    gz = next(c for c in plan.candidates if c.warehouse == "GZ")
    assert gz.factors["cost"] == 1000 and gz.serves_all
    assert "2 of 3 units" in sh.note and "950‰" in sh.note


def test_weights_change_the_choice() -> None:
    near_but_late = wh("NEAR", "上海", "上海", on_time=400)
    far_but_punctual = wh("FAR", "四川", "成都", on_time=1000)
    lines, stock = [LineDemand(1, "A", 1)], {("NEAR", "A"): 1, ("FAR", "A"): 1}
    by_distance = plan_allocation(lines, stock, [near_but_late, far_but_punctual], SUZHOU,
                                  weights=AllocationWeights(distance=80, cover=10, on_time=10, cost=0))
    by_punctuality = plan_allocation(lines, stock, [near_but_late, far_but_punctual], SUZHOU,
                                     weights=AllocationWeights(distance=10, cover=10, on_time=80, cost=0))
    assert by_distance.assignments[0].warehouse == "NEAR"
    assert by_punctuality.assignments[0].warehouse == "FAR"
    assert by_punctuality.weights.on_time == 80


def test_cost_weight_prefers_the_cheaper_warehouse() -> None:
    cheap, dear = wh("CHEAP", "上海", "上海", cost=500), wh("DEAR", "上海", "上海", cost=1000)
    plan = plan_allocation([LineDemand(1, "A", 1)], {("CHEAP", "A"): 1, ("DEAR", "A"): 1}, [dear, cheap], SUZHOU)
    assert [(c.warehouse, c.factors["cost"], c.parts["cost"]) for c in plan.candidates] == [
        ("CHEAP", 1000, 100), ("DEAR", 500, 50)]


# --------------------------------------------------------------------------- distance
def test_distance_from_the_city_table() -> None:
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, [SHANGHAI_WH, GUANGZHOU_WH],
                           Destination("CN", "广东省", "深圳市"))
    distances = {c.warehouse: c.distance_km for c in plan.candidates}
    assert distances["GZ"] is not None and 95 <= distances["GZ"] <= 115         # Guangzhou–Shenzhen ≈ 105 km
    assert distances["SH"] is not None and 1180 <= distances["SH"] <= 1250      # Shanghai–Shenzhen ≈ 1215 km
    gz = next(c for c in plan.candidates if c.warehouse == "GZ")
    assert "table city 广州 → table city 深圳" in gz.note


def test_an_unlisted_city_falls_back_to_its_provincial_capital() -> None:
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, [GUANGZHOU_WH, SHANGHAI_WH],
                           Destination("中国", "广东", "湛江市"))
    gz = next(c for c in plan.candidates if c.warehouse == "GZ")
    assert gz.distance_km == 0 and gz.factors["distance"] == 1000
    assert "table capital 广州 of 广东" in gz.note


def test_distance_from_warehouse_coordinates() -> None:
    kunshan = wh("KS", None, None, lat_e6=31_385_600, lon_e6=120_980_700)       # no names: coordinates only
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, [kunshan], Destination("CN", "上海", "上海"))
    (candidate,) = plan.candidates
    assert candidate.distance_km is not None and 40 <= candidate.distance_km <= 55
    assert candidate.factors["distance"] == (3000 - candidate.distance_km) * 1000 // 3000
    assert "warehouse coordinates" in candidate.note


def test_coordinates_win_over_the_warehouse_city_name() -> None:
    # Named Shanghai but actually at Chengdu's coordinates: the coordinates count.
    misnamed = wh("X", "上海", "上海", lat_e6=30_572_800, lon_e6=104_066_800)
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, [misnamed], Destination("CN", "四川", "成都"))
    assert plan.candidates[0].distance_km == 0


def test_heuristics_when_no_points_can_be_compared() -> None:
    destination = Destination("US", "CA", "San Jose")
    warehouses = [wh("SJ", "CA", "San Jose"), wh("LA", "CA", "Los Angeles"), wh("NY", "NY", "New York"),
                  wh("SH", "上海", "上海")]
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, warehouses, destination)
    factors = {c.warehouse: c.factors["distance"] for c in plan.candidates}
    assert factors == {"SJ": SAME_CITY, "LA": SAME_PROVINCE, "NY": 0, "SH": 0}
    assert all(c.distance_km is None for c in plan.candidates)


def test_same_country_when_the_destination_has_no_known_place() -> None:
    warehouses = [SHANGHAI_WH, wh("US", "CA", "San Jose")]
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, warehouses, Destination("CN", None, None))
    factors = {c.warehouse: c.factors["distance"] for c in plan.candidates}
    assert factors == {"SH": SAME_COUNTRY, "US": 0}


def test_same_city_names_in_different_provinces_are_not_the_same_city() -> None:
    plan = plan_allocation([LineDemand(1, "A", 1)], {}, [wh("W", "Ohio", "Springfield")],
                           Destination("US", "Illinois", "Springfield"))
    assert plan.candidates[0].factors["distance"] == 0


def test_the_table_covers_every_province_and_twenty_more_cities() -> None:
    assert len(geo.PROVINCES) == 31
    assert len({p.name for p in geo.PROVINCES}) == 31
    for province in geo.PROVINCES:
        capital = geo.find_city(province.capital)
        assert capital is not None and capital.province == province.name, province
    non_capitals = [c for c in geo.CITIES if c.name not in {p.capital for p in geo.PROVINCES}]
    assert len(non_capitals) >= 20
    for city in geo.CITIES:
        assert geo.find_province(city.province) is not None, city
        assert 18_000_000 <= city.lat_e6 <= 54_000_000 and 73_000_000 <= city.lon_e6 <= 135_000_000, city


@pytest.mark.parametrize(("province", "city", "found", "precision"), [
    ("广西壮族自治区", "南宁市", "南宁", geo.Precision.CITY),
    ("Guangdong Province", "Shenzhen City", "深圳", geo.Precision.CITY),
    ("Shaanxi", "Xi'an", "西安", geo.Precision.CITY),
    ("山西省", None, "太原", geo.Precision.PROVINCE),
    ("新疆维吾尔自治区", "喀什地区", "乌鲁木齐", geo.Precision.PROVINCE),
    ("Inner Mongolia Autonomous Region", None, "呼和浩特", geo.Precision.PROVINCE),
    (None, "上海市", "上海", geo.Precision.CITY),
    ("浙江省", "苏州市", "杭州", geo.Precision.PROVINCE),      # contradiction: trust the province
])
def test_place_names_are_matched_in_their_usual_spellings(province: str | None, city: str | None, found: str,
                                                          precision: geo.Precision) -> None:
    located = geo.locate(province, city)
    assert located is not None
    assert (located.city.name, located.precision) == (found, precision)


def test_unknown_places_are_not_located() -> None:
    assert geo.locate("Bavaria", "Munich") is None
    assert geo.locate(None, None) is None
    assert geo.normalize_place_name("  市 ") == "市"
    assert geo.normalize_place_name("   ") is None


def test_haversine_matches_known_distances() -> None:
    beijing, shanghai = geo.find_city("北京"), geo.find_city("上海")
    assert beijing is not None and shanghai is not None
    km = geo.haversine_km(beijing.lat_e6, beijing.lon_e6, shanghai.lat_e6, shanghai.lon_e6)
    assert 1060 <= km <= 1075                              # ≈ 1067 km
    assert geo.haversine_km(0, 0, 0, 180_000_000) == 20_015   # half the equator
    assert geo.haversine_km(1, 2, 1, 2) == 0


def test_destination_from_an_order_address() -> None:
    address = Address(country="CN", province="江苏省", city="苏州市", district="工业园区", detail="星湖街 1 号")
    assert Destination.from_address(address) == SUZHOU


# --------------------------------------------------------------------------- determinism and JSON
def test_the_plan_does_not_depend_on_input_order() -> None:
    lines = [LineDemand(3, "C", 1), LineDemand(1, "A", 4), LineDemand(2, "B", 2)]
    stock = {("SH", "A"): 2, ("GZ", "A"): 5, ("CD", "B"): 2, ("SH", "C"): 1, ("GZ", "B"): 1}
    warehouses = [SHANGHAI_WH, GUANGZHOU_WH, CHENGDU_WH]
    first = plan_allocation(lines, stock, warehouses, SUZHOU, allow_split=True)
    again = plan_allocation(list(reversed(lines)), dict(reversed(stock.items())), list(reversed(warehouses)),
                            SUZHOU, allow_split=True)
    assert first == again
    assert [a.line_no for a in first.assignments] == sorted(a.line_no for a in first.assignments)


def _no_floats(value: object) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _no_floats(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_floats(v) for v in value)
    return value is None or isinstance(value, (str, int, bool))


def test_to_json_round_trips_through_json() -> None:
    plan = plan_allocation([LineDemand(1, "A", 3), LineDemand(2, "B", 1)], {("SH", "A"): 2, ("GZ", "A"): 2},
                           [SHANGHAI_WH, GUANGZHOU_WH, wh("KS", None, None, lat_e6=31_385_600, lon_e6=120_980_700)],
                           SUZHOU, weights=AllocationWeights(50, 20, 20, 10), allow_split=True)
    data = plan.to_json()
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    assert json.loads(text) == data
    assert _no_floats(data)
    assert data["complete"] is False and data["split"] is True
    assert data["shortfalls"] == [{"line_no": 2, "sku": "B", "missing": 1}]
    assert data["weights"] == {"distance": 50, "cover": 20, "on_time": 20, "cost": 10}
    assert AllocationPlan.from_json(json.loads(text)) == plan


def test_from_json_rejects_a_damaged_plan() -> None:
    with pytest.raises(InvalidAllocationPolicy) as error:
        AllocationPlan.from_json({"assignments": [{"line_no": "1", "sku": "A", "warehouse": "SH", "quantity": 1}]})
    assert error.value.field == "line_no"


# --------------------------------------------------------------------------- validation
def test_weights_from_a_policy_mapping() -> None:
    assert AllocationWeights.from_mapping({}) == AllocationWeights(40, 30, 20, 10)
    assert AllocationWeights.from_mapping({"distance": 60, "cover": 40}) == AllocationWeights(60, 40, 0, 0)
    assert AllocationWeights.from_mapping({"distance": 25, "cover": 25, "on_time": 25, "cost": 25}).cost == 25


@pytest.mark.parametrize(("data", "field"), [
    ({"distance": 50, "cover": 30}, "allocation_weights"),                  # adds up to 80
    ({"distance": 100, "cover": 10}, "allocation_weights"),                 # each fine, 110 in total
    ({"distance": 101}, "allocation_weights.distance"),
    ({"distance": 110, "cover": -10}, "allocation_weights.distance"),
    ({"distance": 40.0, "cover": 60}, "allocation_weights.distance"),
    ({"distance": True, "cover": 99}, "allocation_weights.distance"),
    ({"distance": "40", "cover": 60}, "allocation_weights.distance"),
    ({"speed": 100}, "allocation_weights.speed"),
])
def test_bad_weights_are_rejected_with_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidAllocationPolicy) as error:
        AllocationWeights.from_mapping(data)
    assert error.value.field == field
    assert error.value.code == "invalid_allocation_policy"


def test_weights_are_checked_when_constructed() -> None:
    with pytest.raises(InvalidAllocationPolicy):
        AllocationWeights(distance=50)


@pytest.mark.parametrize(("lines", "error", "field"), [
    ([], InvalidOrder, "lines"),
    ([LineDemand(1, "A", 1), LineDemand(1, "B", 1)], InvalidOrder, "lines[1].line_no"),
    ([LineDemand(1, "A", 0)], InvalidOrder, "lines[0].quantity"),
    ([LineDemand(1, " ", 1)], InvalidOrder, "lines[0].sku"),
])
def test_bad_lines_are_rejected(lines: list[LineDemand], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as raised:
        plan_allocation(lines, {}, [SHANGHAI_WH], SUZHOU)
    assert getattr(raised.value, "field", None) == field


@pytest.mark.parametrize(("warehouses", "field"), [
    ([SHANGHAI_WH, wh("SH")], "warehouses[1].code"),
    ([wh("")], "warehouses[0].code"),
    ([wh("W", on_time=1001)], "warehouses[0].on_time_permille"),
    ([wh("W", cost=-1)], "warehouses[0].handling_cost_minor"),
    ([wh("W", lat_e6=91_000_000, lon_e6=0)], "warehouses[0].lat_e6"),
    ([wh("W", lat_e6=0, lon_e6=-181_000_000)], "warehouses[0].lon_e6"),
])
def test_bad_warehouses_are_rejected(warehouses: list[WarehouseProfile], field: str) -> None:
    with pytest.raises(InvalidAllocationPolicy) as raised:
        plan_allocation([LineDemand(1, "A", 1)], {}, warehouses, SUZHOU)
    assert raised.value.field == field


def test_negative_availability_is_rejected() -> None:
    with pytest.raises(InvalidStock):
        plan_allocation([LineDemand(1, "A", 1)], {("SH", "A"): -1}, [SHANGHAI_WH], SUZHOU)


# --------------------------------------------------------------------------- property
CODES = ["W1", "W2", "W3", "W4"]
SKUS = ["A", "B", "C"]
PLACES = [("上海", "上海"), ("广东", "深圳"), ("四川", None), (None, None), ("CA", "San Jose"), ("浙江", "温州")]


@st.composite
def weights_strategy(draw: st.DrawFn) -> AllocationWeights:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=3, max_size=3)))
    return AllocationWeights(cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 100 - cuts[2])


@st.composite
def warehouses_strategy(draw: st.DrawFn) -> list[WarehouseProfile]:
    codes = draw(st.lists(st.sampled_from(CODES), unique=True, max_size=4))
    found = []
    for code in codes:
        province, city = draw(st.sampled_from(PLACES))
        point = draw(st.one_of(st.none(), st.tuples(st.integers(-90_000_000, 90_000_000),
                                                    st.integers(-180_000_000, 180_000_000))))
        found.append(WarehouseProfile(code, province, city, point[0] if point else None, point[1] if point else None,
                                      on_time_permille=draw(st.integers(0, 1000)),
                                      handling_cost_minor=draw(st.integers(0, 5000))))
    return found


LINES = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 20)), min_size=1, max_size=6).map(
    lambda items: [LineDemand(i + 1, sku, qty) for i, (sku, qty) in enumerate(items)])
STOCK = st.dictionaries(st.tuples(st.sampled_from(CODES), st.sampled_from(SKUS)), st.integers(0, 30), max_size=12)
DESTINATIONS = st.builds(Destination, st.sampled_from(["CN", "US", None]),
                         st.sampled_from([p for p, _ in PLACES]), st.sampled_from([c for _, c in PLACES]))


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(lines=LINES, stock=STOCK, warehouses=warehouses_strategy(), destination=DESTINATIONS,
       weights=weights_strategy(), allow_split=st.booleans())
def test_allocation_never_oversells_and_accounts_for_every_unit(
        lines: list[LineDemand], stock: dict[tuple[str, str], int], warehouses: list[WarehouseProfile],
        destination: Destination, weights: AllocationWeights, allow_split: bool) -> None:
    plan = plan_allocation(lines, stock, warehouses, destination, weights=weights, allow_split=allow_split)
    taken: Counter[tuple[str, str]] = Counter()
    per_line: Counter[int] = Counter()
    for a in plan.assignments:
        assert a.quantity > 0
        taken[(a.warehouse, a.sku)] += a.quantity
        per_line[a.line_no] += a.quantity
    for key, units in taken.items():
        assert units <= stock.get(key, 0), key
    sku_of = {line.line_no: line.sku for line in lines}
    for line_no, sku, missing in plan.shortfalls:
        assert missing > 0 and sku == sku_of[line_no]
        per_line[line_no] += missing
    assert per_line == Counter({line.line_no: line.quantity for line in lines})
    assert {(a.line_no, a.sku) for a in plan.assignments} <= {(line.line_no, line.sku) for line in lines}
    # Explainable and bounded: every warehouse is a candidate, each score the sum of its parts.
    assert sorted(c.warehouse for c in plan.candidates) == sorted(w.code for w in warehouses)
    assert all(c.score == sum(c.parts.values()) and 0 <= c.score <= 1000 for c in plan.candidates)
    # One warehouse unless splitting is allowed; a full single warehouse is always used alone.
    if not allow_split or any(c.serves_all for c in plan.candidates):
        assert len(plan.warehouses) <= 1 and not plan.split
    if any(c.serves_all for c in plan.candidates):
        assert plan.complete
    assert plan_allocation(lines, stock, warehouses, destination, weights=weights, allow_split=allow_split) == plan
    assert AllocationPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan

"""After-sale and finance throughput (issue 6): refund policy decisions per second and
statement lines matched per second against 100,000 open refunds.

* **policy** — the default ``refund_policy`` (its 7 CEL rules and the default) deciding
  prepared fact sets on one core: varied stages (unshipped, shipped, delivered minutes to
  weeks ago), amounts, categories, customer histories and reasons, so every rule fires; the
  table shows how often each did. Also the cost of building the facts from a domain Order.
* **cases opened** — ``RequestAfterSale`` through the bus on SQLite and PostgreSQL: the order
  read and locked, the other cases' amounts, the buyer's history, the policy, the case row, an
  audit entry and (auto-approved) the refund in the outbox, one transaction each.
* **statement matching** — ``Matcher`` in memory: 10,000 statement lines (exact reference,
  order number in the memo, amount and date only, noise) against 100,000 refunded cases and
  100,000 paid orders.
* **statement import** — ``import_statement`` end to end on SQLite and PostgreSQL with those
  100,000 refunds and orders stored: parse, load candidates, match, write lines, one
  transaction; then the same file again (idempotent: nothing new).

    .venv/bin/python benchmarks/bench_aftersale.py [--decisions N] [--refunds N] [--lines N] [--skip-pg]

Figures only: nothing here passes or fails on time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench_orders import RunStart, add_engine_options, console, pg_database
from rich.table import Table
from sqlalchemy import insert, text

from orderhub.adapters.db.aftersale_tables import aftersale_cases
from orderhub.adapters.db.tables import orders
from orderhub.adapters.refund_policy import CustomerHistory, default_refund_policy, refund_facts
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.aftersale.states import AfterSaleType
from orderhub.domain.finance.statements import Candidate, Matcher, parse_statement
from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import OrderEventType, OrderStatus
from orderhub.service_layer.statements import import_statement

SEED = 20261207
BENCH_DB = "orderhub_bench_aftersale"
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
REASONS = ("changed_mind", "damaged", "not_as_described", "wrong_size", "not_received", "spoiled", "no_reason")
SKUS = ("TEA-LJ-250", "FRESH-LYCHEE", "CUSTOM-MUG", "VIRT-CARD", "CUP-GLASS")


@dataclass
class Row:
    """One line of the result table."""

    engine: str
    what: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


# ---------------------------------------------------------------------------- policy
def _order(rnd: random.Random, n: int) -> Order:
    sku = rnd.choice(SKUS)
    line = OrderLine.build(1, sku=sku, title=sku, quantity=rnd.randint(1, 3),
                           unit_price=Money(rnd.choice((990, 5990, 12800, 39900, 259900)), "CNY"),
                           discount=Money(0, "CNY"), tax=Money(0, "CNY"), currency="CNY")
    placed = NOW - timedelta(days=rnd.randint(1, 30))
    order = Order.create(
        tenant_id="t", channel=rnd.choice(("taobao", "douyin", "own_site", "pinduoduo")), shop="s",
        external_id=f"B{n}", currency="CNY", status=OrderStatus.PAID, lines=[line], shipping_fee=Money(0, "CNY"),
        discount=Money(0, "CNY"), buyer=Buyer(name="买家", phone="138****0000", email=None),
        shipping_address=Address(country="CN", province="浙江省", city="杭州市", district="西湖区", detail="x",
                                 postcode="310000", name="买家", phone="138****0000"),
        tags=tuple(rnd.sample(("express", "custom-made", "vip", "perishable"), rnd.randint(0, 1))),
        placed_at=placed, paid_at=placed + timedelta(minutes=1), now=placed, channel_status=None, raw_ref=None)
    stage = rnd.choice(("paid", "shipped", "delivered", "delivered"))
    if stage != "paid":
        shipped = placed + timedelta(hours=rnd.randint(2, 48))
        order.apply(OrderEvent(type=OrderEventType.SHIP, occurred_at=shipped, key=f"s{n}"), now=shipped)
        if stage == "delivered":
            delivered = min(shipped + timedelta(hours=rnd.randint(1, 200)), NOW - timedelta(minutes=5))
            order.apply(OrderEvent(type=OrderEventType.DELIVER, occurred_at=delivered, key=f"d{n}"), now=delivered)
    return order


def policy_figures(count: int) -> tuple[list[Row], Counter[str]]:
    """Decisions per second on one core, and how often each rule fired."""
    rnd = random.Random(SEED)
    policy = default_refund_policy()
    inputs = []
    for n in range(2000):
        order = _order(rnd, n)
        customer = CustomerHistory(key=f"c{n % 300}", first_order_at=NOW - timedelta(days=rnd.randint(0, 600)),
                                   orders=rnd.randint(1, 80), refunds=rnd.randint(0, 3), disputes=rnd.choice((0, 0, 1)))
        inputs.append(dict(order=order, case_type=rnd.choice(list(AfterSaleType)[:3]), reason=rnd.choice(REASONS),
                           amount=rnd.randint(100, min(order.total.amount, 400000)), line_count=1, item_count=1,
                           source=rnd.choice(("api", "channel")), customer=customer, now=NOW, params=policy.params))
    started = time.perf_counter()
    facts = [refund_facts(**inputs[i % len(inputs)]) for i in range(count)]
    built = time.perf_counter() - started
    fired: Counter[str] = Counter()
    started = time.perf_counter()
    for f in facts:
        fired[policy.decide(f).rule] += 1
    decided = time.perf_counter() - started
    return [Row("—", "policy decisions (default refund_policy, 1 core)", count, decided, "CEL only"),
            Row("—", "facts built from a domain Order", count, built, "")], fired


# ---------------------------------------------------------------------------- cases through the bus
def case_figure(engine_name: str, hub: OrderHub, count: int) -> Row:
    """RequestAfterSale through the bus, one transaction per case, on ``count`` paid orders."""
    tenant = hub.bus.handle(commands.CreateTenant(f"bench-{engine_name}"))
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="bench", source="bench")
    order_ids = []
    for n in range(count):
        created = hub.bus.handle(commands.CreateOrder(
            actor=actor, channel="own_site", shop="main", external_id=f"AS-{n}", currency="CNY", status="paid",
            placed_at=NOW - timedelta(days=1), paid_at=NOW - timedelta(days=1),
            buyer={"name": f"买家{n % 50}", "phone": f"138****{n % 50:04d}", "email": None},
            lines=(commands.LineInput(sku="TEA-LJ-250", quantity=2, unit_price="59.90"),)))
        order_ids.append(created.order_id)
    started = time.perf_counter()
    for n, order_id in enumerate(order_ids):
        hub.bus.handle(commands.RequestAfterSale(actor=actor, order_id=order_id, type="refund_only",
                                                 reason=("changed_mind", "not_as_described")[n % 2], amount="10.00"))
    return Row(engine_name, "cases opened (RequestAfterSale, 1 thread)", count, time.perf_counter() - started,
               "policy + case + audit + outbox")


# ---------------------------------------------------------------------------- statements
@dataclass
class World:
    """The refunds and orders a statement is matched against, and the statement."""

    refunds: list[Candidate]
    payments: list[Candidate]
    csv: bytes
    lines: int


def _day(rnd: random.Random) -> datetime:
    return (NOW - timedelta(days=rnd.randint(1, 60), minutes=rnd.randint(0, 1439))).replace(microsecond=0)


def make_world(refund_count: int, line_count: int) -> World:
    """``refund_count`` refunded cases and as many paid orders, and a statement of ``line_count``
    lines: 40 % name the refund's reference, 25 % the order number in the memo, 25 % only the
    amount (and date), 5 % payments by order number, 5 % noise nobody owes."""
    rnd = random.Random(SEED)
    refunds, payments = [], []
    for n in range(refund_count):
        external = f"TB{20260000000 + n}"
        order_id = f"ord_bench{n:08d}"
        paid = _day(rnd)
        payments.append(Candidate(kind="payment", id=order_id, amount=rnd.randint(1000, 500000), currency="CNY",
                                  at=paid, order_id=order_id, order_external_id=external))
        refunds.append(Candidate(kind="refund", id=f"as_bench{n:08d}", amount=rnd.randint(100, 300000),
                                 currency="CNY", at=paid + timedelta(days=rnd.randint(1, 5)), order_id=order_id,
                                 order_external_id=external, refund_ref=f"RF{90000000000 + n}"))
    rows = ["date,amount,memo,counterparty,reference"]
    chosen = rnd.sample(range(refund_count), min(line_count, refund_count))
    for i, n in enumerate(chosen):
        r = refunds[n]
        when = (r.at + timedelta(hours=rnd.randint(0, 30))).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        amount = Money(-r.amount, "CNY").to_decimal_string()
        kind = i % 20
        if kind < 8:
            rows.append(f"{when},{amount},退款,支付宝,{r.refund_ref}")
        elif kind < 13:
            rows.append(f"{when},{amount},订单 {r.order_external_id} 退款,支付宝,")
        elif kind < 18:
            rows.append(f"{when},{amount},退款,支付宝,")
        elif kind == 18:
            p = payments[n]
            rows.append(f"{when},{Money(p.amount, 'CNY').to_decimal_string()},货款 {p.order_external_id},买家,")
        else:
            rows.append(f"{when},-{rnd.randint(1, 99)}.{rnd.randint(10, 99)},手续费,银行,")
    return World(refunds=refunds, payments=payments, csv=("\n".join(rows) + "\n").encode(), lines=len(rows) - 1)


def matcher_figure(world: World) -> tuple[Row, Row, Counter[str]]:
    """Index build and matching in memory."""
    started = time.perf_counter()
    matcher = Matcher([*world.refunds, *world.payments], tolerance_minor=50, window_days=3)
    built = time.perf_counter() - started
    parsed = parse_statement(world.csv)
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    for line in parsed.lines:
        result = matcher.match(line)
        outcomes[f"matched by {result.rule}" if result.matched is not None else result.status] += 1
    matched = time.perf_counter() - started
    return (Row("memory", f"statement lines matched vs {len(world.refunds):,} refunds + "
                          f"{len(world.payments):,} orders", len(parsed.lines), matched),
            Row("memory", "candidate indexes built", len(world.refunds) + len(world.payments), built,
                "once per import"),
            outcomes)


def store_world(hub: OrderHub, tenant_id: str, world: World) -> float:
    """Insert the orders, then the refunded cases, in bulk; seconds taken.

    Statistics are refreshed after each table, as autovacuum would have them on a database
    that grew to this size: without them PostgreSQL checks each case's foreign key, and plans
    the candidate queries, as if the tables were empty (sequential scans, minutes instead of
    seconds)."""
    started = time.perf_counter()
    batch = 5000
    with hub.engine.begin() as conn:
        for start in range(0, len(world.payments), batch):
            conn.execute(insert(orders), [{
                "tenant_id": tenant_id, "id": p.order_id, "channel": "own_site", "shop": "web",
                "external_id": p.order_external_id, "currency": "CNY", "status": "delivered", "payment_status": "paid",
                "subtotal_minor": p.amount, "shipping_fee_minor": 0, "discount_minor": 0, "total_minor": p.amount,
                "buyer": {}, "tags": [], "placed_at": p.at, "paid_at": p.at, "status_changed_at": p.at,
                "created_at": p.at, "updated_at": p.at, "version": 1, "conflict_count": 0,
                "search_text": p.order_external_id.lower()} for p in world.payments[start:start + batch]])
    _analyze(hub, "orders")
    with hub.engine.begin() as conn:
        for start in range(0, len(world.refunds), batch):
            conn.execute(insert(aftersale_cases), [{
                "tenant_id": tenant_id, "id": r.id, "order_id": r.order_id, "channel": "own_site", "shop": "web",
                "type": "refund_only", "status": "refunded", "reason": "changed_mind", "currency": "CNY",
                "amount_minor": r.amount, "refunded_minor": r.amount, "lines": [], "source": "api",
                "refund_ref": r.refund_ref, "refunded_at": r.at, "refund_via": "gateway", "sla_level": "none",
                "sla_rank": 0, "sla_due": {}, "created_at": r.at, "updated_at": r.at, "version": 1}
                for r in world.refunds[start:start + batch]])
    _analyze(hub, "aftersale_cases")
    return time.perf_counter() - started


def _analyze(hub: OrderHub, table: str) -> None:
    with hub.engine.begin() as conn:
        conn.execute(text(f"ANALYZE {table}"))  # a constant table name: no injection vector


def import_figures(engine_name: str, hub: OrderHub, world: World) -> list[Row]:
    tenant = hub.bus.handle(commands.CreateTenant(f"bench-import-{engine_name}"))
    seeded = store_world(hub, tenant.tenant_id, world)
    rows = [Row(engine_name, "refunds + orders stored (bulk, setup)", 2 * len(world.refunds), seeded)]
    started = time.perf_counter()
    report = import_statement(hub.uow_factory, tenant_id=tenant.tenant_id, filename="bench.csv", data=world.csv)
    first = time.perf_counter() - started
    rows.append(Row(engine_name, f"statement import, {report.matched:,} matched / {len(report.ambiguous):,} "
                                 f"ambiguous / {len(report.unmatched):,} unmatched", world.lines, first,
                    "parse + load + match + write"))
    started = time.perf_counter()
    again = import_statement(hub.uow_factory, tenant_id=tenant.tenant_id, filename="bench.csv", data=world.csv)
    rows.append(Row(engine_name, f"same file again ({again.already_imported:,} already imported)", world.lines,
                    time.perf_counter() - started, "idempotent"))
    return rows


def with_hub(url: str, home: Path) -> OrderHub:
    """A hub on ``url`` (migrated), the way ``orderhub serve`` builds one."""
    settings = Settings.from_env({"ORDERHUB_HOME": str(home), "ORDERHUB_DATABASE_URL": url})
    return bootstrap(settings, upgrade_db=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decisions", type=int, default=50_000, help="policy decisions timed (default 50,000)")
    p.add_argument("--cases", type=int, default=300, help="cases opened through the bus per engine (default 300)")
    p.add_argument("--refunds", type=int, default=100_000, help="open refunds (and paid orders) to match against")
    p.add_argument("--lines", type=int, default=10_000, help="statement lines (default 10,000)")
    add_engine_options(p, BENCH_DB)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunStart.now(args)
    rows, fired = policy_figures(args.decisions)
    world = make_world(args.refunds, args.lines)
    match_row, index_row, outcomes = matcher_figure(world)
    rows += [match_row, index_row]
    engines: list[tuple[str, Any]] = []
    if not args.skip_sqlite:
        engines.append(("SQLite", None))
    if not args.skip_pg and run.pg is not None:
        engines.append(("PostgreSQL", args.pg_url))
    for name, pg_url in engines:
        with tempfile.TemporaryDirectory() as tmp:
            if pg_url is None:
                hub = with_hub(f"sqlite:///{tmp}/bench.db", Path(tmp))
                rows += _engine_rows(name, hub, world, args)
            else:
                with pg_database(pg_url, BENCH_DB) as url:
                    hub = with_hub(url, Path(tmp))
                    rows += _engine_rows(name, hub, world, args)
    info = Table(title="Machine", show_header=False)
    for k, v in run.machine():
        info.add_row(k, v)
    console.print(info)
    table = Table(title="OrderHub after-sale and finance throughput")
    for col, justify in (("engine", "left"), ("what", "left"), ("count", "right"), ("seconds", "right"),
                         ("per second", "right"), ("note", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r.engine, r.what, f"{r.count:,}", f"{r.seconds:.2f}", f"{r.rate:,.0f}", r.note)
    console.print(table)
    console.print("rules fired: " + ", ".join(f"{k} {v}" for k, v in fired.most_common()))
    console.print("statement outcomes (memory): " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    console.print("Targets: 5,000 policy decisions/s on one core. Figures only; other work on the machine "
                  "skews them (see the speed check).")


def _engine_rows(name: str, hub: OrderHub, world: World, args: argparse.Namespace) -> list[Row]:
    try:
        return [case_figure(name, hub, args.cases), *import_figures(name, hub, world)]
    finally:
        hub.close()


if __name__ == "__main__":
    main()

"""Statement import (issue 6 §6) on SQLite and PostgreSQL: refunded cases and paid orders
seeded into the migrated schema, a statement CSV matched by every rule, ambiguous and
unmatched lines reported, bad rows listed while good rows import, a file that can't be read
imports nothing, a re-import (or an overlapping file) imports nothing twice, and a refund or
payment is matched by one line only — across imports too, with the UNIQUE key as the last
line of defence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, insert, select

from orderhub.adapters.db.aftersale_tables import aftersale_cases, statement_imports, statement_lines
from orderhub.adapters.db.statements import SqlStatementRepository
from orderhub.adapters.db.tables import orders
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands, ids
from orderhub.domain.errors import InvalidStatement
from orderhub.domain.finance.statements import Candidate
from orderhub.service_layer.errors import ConcurrencyConflict, InvalidInput
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.statements import StatementReport, import_statement
from orderhub.service_layer.statements import statement_lines as list_lines

HEADER = "date,amount,memo,counterparty,reference\n"
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def shanghai(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """2026-11-DAY HOUR:MINUTE in Shanghai, as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


def add_order(conn: Connection, tenant_id: str, external_id: str, total: int, *, paid_day: int | None = None) -> str:
    order_id = ids.order_id(tenant_id, "own_site", "web", external_id)
    paid_at = shanghai(paid_day) if paid_day else None
    conn.execute(insert(orders).values(
        tenant_id=tenant_id, id=order_id, channel="own_site", shop="web", external_id=external_id, currency="CNY",
        status="paid" if paid_at else "pending_payment", payment_status="paid" if paid_at else "unpaid",
        subtotal_minor=total, shipping_fee_minor=0, discount_minor=0, total_minor=total, buyer={}, tags=[],
        placed_at=shanghai(1), paid_at=paid_at, status_changed_at=NOW, created_at=NOW, updated_at=NOW, version=1,
        search_text=external_id.lower()))
    return order_id


def add_refund(conn: Connection, tenant_id: str, case_id: str, order_id: str, amount: int, day: int, *,
               ref: str | None = None, status: str = "refunded") -> None:
    conn.execute(insert(aftersale_cases).values(
        tenant_id=tenant_id, id=case_id, order_id=order_id, channel="own_site", shop="web", type="refund_only",
        status=status, reason="changed_mind", currency="CNY", amount_minor=amount,
        refunded_minor=amount if status == "refunded" else 0, lines=[], source="api", refund_ref=ref,
        refunded_at=shanghai(day) if status == "refunded" else None, sla_due={}, created_at=NOW, updated_at=NOW,
        version=1))


@pytest.fixture
def seeded(hub: OrderHub, tenant: IssuedKey) -> str:
    """Orders and refunds of ``acme``; a second tenant holds look-alikes that must not match."""
    t = tenant.tenant_id
    other = hub.bus.handle(commands.CreateTenant("globex")).tenant_id
    with hub.engine.begin() as conn:
        o1 = add_order(conn, t, "WEB-100001", 11980, paid_day=18)
        o2 = add_order(conn, t, "TB20261121001", 5000, paid_day=19)
        o3 = add_order(conn, t, "WEB-100003", 7700, paid_day=20)
        o4 = add_order(conn, t, "WEB-100004", 3000)                           # never paid
        add_refund(conn, t, "as_ref", o1, 5990, 20, ref="2026112199001")     # matched by reference
        add_refund(conn, t, "as_memo", o2, 2500, 2)                          # old, named by its order in the memo
        add_refund(conn, t, "as_amt", o3, 1234, 21)                          # matched by amount and date
        add_refund(conn, t, "as_twin1", o3, 888, 22)                         # two equal refunds, one day
        add_refund(conn, t, "as_twin2", o1, 888, 22)
        add_refund(conn, t, "as_open", o4, 999, 22, status="approved")       # not refunded yet: no candidate
        o9 = add_order(conn, other, "WEB-100001", 11980, paid_day=18)
        add_refund(conn, other, "as_other", o9, 4321, 21)
    return t


def run(hub: OrderHub, tenant_id: str, text: str, *, name: str = "stmt.csv", encoding: str = "utf-8",
        **options: Any) -> StatementReport:
    return import_statement(hub.uow_factory, tenant_id=tenant_id, filename=name, data=text.encode(encoding),
                            **options)


def stored(hub: OrderHub) -> dict[int, Any]:
    with hub.engine.connect() as conn:
        return {row.line_no: row for row in conn.execute(select(statement_lines))}


def count(hub: OrderHub, table: Any) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


STATEMENT = HEADER + "\n".join([
    "2026-11-23 09:15:00,-59.90,支付宝退款,王小明,2026112199001",      # 2 reference
    "2026-11-23,-25.00,退款 订单号TB20261121001,李四,",                 # 3 memo_order (refund 3 weeks old)
    "2026-11-24,-12.30,退款,张三,",                                      # 4 amount_date (0.04 off, 3 days)
    "2026-11-22,-8.88,退款,赵六,",                                       # 5 ambiguous: twins
    "2026-11-22,-43.21,退款,钱七,",                                      # 6 unmatched (other tenant's refund)
    "2026-11-18 20:00:00,119.80,货款,平台,WEB-100001",                   # 7 payment by reference
    "2026-11-20,77.00,货款,平台,",                                       # 8 payment by amount and date
    "not a date,-1.00,x,y,",                                             # 9 bad date
    "2026-11-22,-1.001,x,y,",                                            # 10 too many decimals
]) + "\n"


def test_import_matches_by_every_rule_and_reports_the_rest(hub: OrderHub, seeded: str) -> None:
    seen: list[tuple[int, int]] = []
    report = run(hub, seeded, STATEMENT, progress=lambda done, total: seen.append((done, total)))
    data = report.to_dict()
    assert (data["file"], data["lines"], data["matched"]) == ("stmt.csv", 7, 5)
    assert data["by_rule"] == {"reference": 2, "memo_order": 1, "amount_date": 2}
    [ambiguous] = data["ambiguous"]
    assert (ambiguous["line"], ambiguous["amount"], ambiguous["memo"]) == (5, {"amount": -888, "currency": "CNY"},
                                                                         "退款")
    assert sorted(c["id"] for c in ambiguous["candidates"]) == ["as_twin1", "as_twin2"]
    assert {c["order_external_id"] for c in ambiguous["candidates"]} == {"WEB-100001", "WEB-100003"}
    assert [(u["line"], u["amount"]) for u in data["unmatched"]] == [(6, {"amount": -4321, "currency": "CNY"})]
    assert [(b["line"], b["field"]) for b in data["bad_rows"]] == [(9, "date"), (10, "amount")]
    assert data["already_imported"] == 0 and data["import_id"].startswith("stm_")
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)

    rows = stored(hub)
    assert sorted(rows) == [2, 3, 4, 5, 6, 7, 8]
    assert {n: (r.status, r.match_rule, r.matched_kind, r.matched_id) for n, r in rows.items()} == {
        2: ("matched", "reference", "refund", "as_ref"),
        3: ("matched", "memo_order", "refund", "as_memo"),
        4: ("matched", "amount_date", "refund", "as_amt"),
        5: ("ambiguous", "amount_date", None, None),
        6: ("unmatched", None, None, None),
        7: ("matched", "reference", "payment", ids.order_id(seeded, "own_site", "web", "WEB-100001")),
        8: ("matched", "amount_date", "payment", ids.order_id(seeded, "own_site", "web", "WEB-100003")),
    }
    assert len(rows[5].candidates) == 2 and rows[2].booked_at == shanghai(23, 9, 15)
    with hub.engine.connect() as conn:
        record = conn.execute(select(statement_imports)).one()
    assert (record.id, record.filename, record.counts["matched"], len(record.errors)) == (
        report.import_id, "stmt.csv", 5, 2)
    assert record.file_digest.startswith("sha256:")


def test_reimport_and_overlapping_files_import_nothing_twice(hub: OrderHub, seeded: str) -> None:
    first = run(hub, seeded, STATEMENT)
    again = run(hub, seeded, STATEMENT)
    assert (again.lines, again.already_imported, again.matched, again.ambiguous, again.unmatched) == (7, 7, 0, [], [])
    assert again.earlier_status == {"matched": 5, "ambiguous": 1, "unmatched": 1}
    assert count(hub, statement_lines) == 7 and count(hub, statement_imports) == 2
    # An overlapping statement: two rows seen before, one new (and the twins' refund is still open).
    overlap = HEADER + "2026-11-22,-8.88,退款,赵六,\n2026-11-22,-43.21,退款,钱七,\n2026-11-22,-8.88,退款,赵六,\n"
    third = run(hub, seeded, overlap, name="next.csv")
    assert (third.lines, third.already_imported, len(third.ambiguous)) == (3, 2, 1)
    assert third.to_dict()["already_imported_by_status"] == {"matched": 0, "ambiguous": 1, "unmatched": 1}
    assert count(hub, statement_lines) == 8
    assert first.import_id != again.import_id != third.import_id


def test_a_refund_is_matched_once_across_imports(hub: OrderHub, seeded: str) -> None:
    one = run(hub, seeded, HEADER + "2026-11-21,-12.34,退款,x,\n")
    assert one.by_rule["amount_date"] == 1
    # Another line for the same amount and day: the refund is taken, so nothing matches.
    two = run(hub, seeded, HEADER + "2026-11-21,-12.34,退款 again,x,\n", name="b.csv")
    assert (two.matched, [ln.line_no for ln in two.unmatched]) == (0, [2])
    # Its reference names it explicitly: still taken, still not matched twice.
    three = run(hub, seeded, HEADER + "2026-11-21,-12.34,退款,x,as_amt\n", name="c.csv")
    assert three.matched == 0
    with hub.engine.connect() as conn:
        taken = conn.execute(select(func.count()).select_from(statement_lines)
                             .where(statement_lines.c.matched_id == "as_amt")).scalar_one()
    assert taken == 1


def test_the_unique_key_refuses_a_second_match_and_nothing_is_imported(hub: OrderHub, seeded: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run(hub, seeded, HEADER + "2026-11-21,-12.34,退款,x,\n")
    # A racing import that loaded its candidates before the first one committed sees the refund as open.
    stale = Candidate("refund", "as_amt", 1234, "CNY", shanghai(21), "o", "WEB-100003")
    monkeypatch.setattr(SqlStatementRepository, "open_candidates", lambda *_a, **_k: [stale])
    with pytest.raises(ConcurrencyConflict, match="nothing was imported"):
        run(hub, seeded, HEADER + "2026-11-21,-12.30,退款 late,x,\n2026-11-21,-99.00,other,x,\n", name="late.csv")
    assert count(hub, statement_lines) == 1 and count(hub, statement_imports) == 1


def test_a_file_without_the_required_columns_imports_nothing(hub: OrderHub, seeded: str) -> None:
    with pytest.raises(InvalidStatement, match="counterparty"):
        run(hub, seeded, "date,amount,memo\n2026-11-21,-12.34,退款\n")
    with pytest.raises(InvalidInput):
        run(hub, seeded, STATEMENT, window_days=-1)
    assert count(hub, statement_lines) == 0 and count(hub, statement_imports) == 0


@pytest.mark.parametrize(("encoding", "prefix"), [("gb18030", ""), ("utf-8", "\ufeff")])
def test_gb18030_and_bom_files(hub: OrderHub, seeded: str, encoding: str, prefix: str) -> None:
    text = prefix + "交易日期,amount,摘要,对方户名,流水号\n2026/11/23,-59.90,支付宝退款,王小明,2026112199001\n"
    report = run(hub, seeded, text, encoding=encoding)
    assert (report.lines, report.by_rule["reference"], report.bad_rows) == (1, 1, [])
    assert stored(hub)[2].memo == "支付宝退款"


def test_tolerance_and_window_are_options(hub: OrderHub, seeded: str) -> None:
    report = run(hub, seeded, HEADER + "2026-11-28,-12.34,退款,x,\n2026-11-21,-12.50,退款,x,\n",
                 tolerance_minor=0, window_days=7)
    assert report.by_rule["amount_date"] == 1 and [ln.line_no for ln in report.unmatched] == [3]


def test_lines_are_listed_by_status(hub: OrderHub, seeded: str) -> None:
    report = run(hub, seeded, STATEMENT)
    everything = list_lines(hub.engine, tenant_id=seeded)
    assert [item["line"] for item in everything] == [2, 3, 4, 5, 6, 7, 8]
    ambiguous = list_lines(hub.engine, tenant_id=seeded, status="ambiguous")
    assert [(i["line"], i["import_id"], len(i["candidates"])) for i in ambiguous] == [(5, report.import_id, 2)]
    matched = list_lines(hub.engine, tenant_id=seeded, status="matched", limit=2)
    assert [(i["line"], i["matched"]) for i in matched] == [(2, {"kind": "refund", "id": "as_ref"}),
                                                             (3, {"kind": "refund", "id": "as_memo"})]
    assert list_lines(hub.engine, tenant_id="ten_nobody") == []
    with pytest.raises(InvalidInput):
        list_lines(hub.engine, tenant_id=seeded, status="pending")

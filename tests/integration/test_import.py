"""Bulk import (``orderhub import FILE``) through the inbox, on SQLite and PostgreSQL: JSONL
rows naming their channel and shop or taking them from the options, bad rows reported with
their line numbers while good rows still import, a dry run that writes nothing, and a
re-import that is all duplicates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from orderhub.adapters.channels.import_files import read_import_file
from orderhub.adapters.db.tables import inbox, orders
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.importing import Importer
from orderhub.service_layer.normalizer import Normalizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "channels"


def fixture(channel: str, case: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / channel / f"{case}.json").read_text(encoding="utf-8")))


@pytest.fixture
def importer(hub: OrderHub, tenant: IssuedKey) -> Importer:
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    for channel, code in (("taobao", "tb-1"), ("own_site", "web")):
        hub.bus.handle(commands.RegisterShop(actor=actor, code=code, channel=channel, name=code,
                                             secret="import-secret-1"))
    hub.bus.handle(commands.PutRuleSet(actor=actor, kind="order_filters", body={"params": {}, "rules": []}))
    normalizer = Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics,
                            worker_id="import-test")
    return Importer(bus=hub.bus, specs=hub.specs, uow_factory=hub.uow_factory, normalizer=normalizer,
                    tenant_id=tenant.tenant_id)


def counts(hub: OrderHub) -> tuple[int, int]:
    with hub.engine.connect() as conn:
        return (int(conn.execute(select(func.count()).select_from(inbox)).scalar_one()),
                int(conn.execute(select(func.count()).select_from(orders)).scalar_one()))


def test_jsonl_import_reports_rows_and_is_idempotent(hub: OrderHub, importer: Importer, tmp_path: Path) -> None:
    taobao = fixture("taobao", "paid_order")
    broken = fixture("taobao", "unpaid_order")
    del broken["created"]
    own = fixture("own_site", "paid_two_lines")
    lines = [
        json.dumps({"channel": "taobao", "shop": "tb-1", "payload": taobao}, ensure_ascii=False),
        "{not json",
        json.dumps({"channel": "taobao", "shop": "tb-1", "payload": broken}, ensure_ascii=False),
        "",
        json.dumps(own, ensure_ascii=False),                       # channel and shop from the options
        json.dumps({"channel": "taobao", "shop": "nope", "payload": taobao}, ensure_ascii=False),
        "[1, 2]",
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = read_import_file(path, fmt=None, channel="own_site", shop="web")

    dry = importer.run(items, dry_run=True)
    assert (dry.created, dry.duplicate, dry.updated) == (2, 0, 0)
    assert [line for line, _ in dry.rejected] == [2, 3, 6, 7]
    reasons = dict(dry.rejected)
    assert "not JSON" in reasons[2] and "created" in reasons[3] and "nope" in reasons[6]
    assert "JSON object" in reasons[7]
    assert counts(hub) == (0, 0)  # a dry run writes nothing

    seen: list[int] = []
    real = importer.run(items, dry_run=False, progress=seen.append)
    assert sum(seen) == len(items)
    assert (real.created, real.duplicate) == (2, 0)
    assert [line for line, _ in real.rejected] == [2, 3, 6, 7]
    assert "dead at created" in dict(real.rejected)[3]
    assert counts(hub) == (3, 2)  # the unmappable row is kept in the inbox, dead-lettered

    again = importer.run(read_import_file(path, fmt=None, channel="own_site", shop="web"), dry_run=False)
    assert (again.created, again.duplicate) == (0, 3)
    assert counts(hub) == (3, 2)


def test_csv_rows_without_a_shop_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_no,status,currency,placed_at,sku,quantity,unit_price\n"
                    "A-1,paid,CNY,2026-11-20 10:00:00,TEA,1,9.90\n", encoding="utf-8")
    [item] = read_import_file(path, fmt=None, channel=None, shop=None)
    assert item.body is None and item.error is not None and item.line == 2 and "--shop" in item.error
    with pytest.raises(ValueError, match="JSONL"):
        read_import_file(path, fmt=None, channel="taobao", shop="tb-1")

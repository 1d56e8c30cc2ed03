"""The after-sale CLI (issue 6): ``orderhub aftersales open|list|show|act`` and
``orderhub finance vouchers|tie-out``, in-process against SQLite and PostgreSQL, with
``--json`` output, refusals as one-line errors (exit 2) and the ledger as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from orderhub.adapters.rules import default_rule_set
from orderhub.workers.aftersale import RefundRelay
from tests.e2e.test_fulfillment_cli import Cli, as_json, cli, refused
from tests.http_helpers import auth
from tests.integration.test_api_orders import order_body

pytestmark = [pytest.mark.e2e]
__all__ = ["cli"]  # the fixture, shared with the fulfillment CLI tests


@pytest.fixture
def order_id(cli: Cli) -> Iterator[str]:
    """A shipped own-site order of 119.80, made over the API."""
    hub = cli.hub()
    try:
        with TestClient(_app(hub), headers=auth(cli.admin_key)) as api:
            created = api.post("/api/v1/orders", json=order_body("CLI-AS-1"))
            assert created.status_code == 201, created.text
            api.post(f"/api/v1/orders/{created.json()['id']}/events", json={"type": "ship"})
            yield str(created.json()["id"])
    finally:
        hub.close()


def _app(hub: object) -> object:
    from orderhub.entrypoints.api.app import create_app  # noqa: PLC0415 - keeps the CLI import path light

    return create_app(hub)  # type: ignore[arg-type]


def test_a_case_is_opened_reviewed_approved_refunded_and_booked_from_the_cli(cli: Cli, order_id: str) -> None:
    opened = as_json(cli("aftersales", "open", order_id, "--reason", "not_as_described", "--amount", "12.30",
                         "--json"))
    assert (opened["status"], opened["decision"]["rule"]) == ("requested", "default")
    queue = as_json(cli("aftersales", "list", "--json"))["items"]
    assert [c["id"] for c in queue] == [opened["id"]]
    table = cli("aftersales", "list")
    assert table.exit_code == 0 and opened["id"] in table.stdout and "12.30 CNY" in table.stdout
    refused(cli("aftersales", "act", opened["id"], "choose", "--params", '{"option": "half"}'),
            "not allowed", "requested")
    refused(cli("aftersales", "act", opened["id"], "approve", "--params", "not json"), "--params is not JSON")
    refused(cli("aftersales", "open", order_id, "--amount", "500.00"), "only 107.50 CNY is left")
    approved = as_json(cli("aftersales", "act", opened["id"], "approve", "--json"))
    assert approved["status"] == "refunding"
    hub = cli.hub()
    relay = RefundRelay(hub)
    try:
        assert relay.run_once() == 1
    finally:
        relay.close()
        hub.close()
    shown = cli("aftersales", "show", opened["id"])
    assert shown.exit_code == 0
    assert "refunded" in shown.stdout and "rule default" in shown.stdout and "Dr sales_returns" in shown.stdout
    exported = cli("finance", "vouchers", "--csv")
    assert exported.exit_code == 0, exported.output
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (row["amount"], row["case_id"], row["credit"]) == ("12.30", opened["id"], "clearing:own_site")
    assert "manual-approved" in row["tags"].split("|")
    tie = as_json(cli("finance", "tie-out", "--json"))
    assert tie["ties_out"] is True
    assert cli("finance", "tie-out").exit_code == 0


def test_the_sandbox_replays_a_proposed_refund_policy_file(cli: Cli, order_id: str, tmp_path: Path) -> None:
    as_json(cli("aftersales", "open", order_id, "--reason", "not_as_described", "--amount", "12.30", "--json"))
    proposed = default_rule_set("refund_policy")
    proposed["rules"] = [{"name": "everything_auto", "when": "true", "action": "auto_approve"}]
    path = tmp_path / "proposed.yaml"
    path.write_text(yaml.safe_dump(proposed, allow_unicode=True), encoding="utf-8")
    report = as_json(cli("sandbox", "refund_policy", str(path), "--json"))
    assert (report["cases"], report["changed"]) == (1, 1)
    assert report["changes"][0]["to"] == {"action": "auto_approve", "rule": "everything_auto"}
    shown = cli("sandbox", "refund_policy", str(path))
    assert shown.exit_code == 0 and "1 decisions would change" in shown.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [{name: x, when: 'order.stage ==', action: auto_approve}]\n", encoding="utf-8")
    refused(cli("sandbox", "refund_policy", str(broken)), "rule x", "not valid CEL")
    assert as_json(cli("aftersales", "list", "--json"))["items"][0]["status"] == "requested"  # nothing changed

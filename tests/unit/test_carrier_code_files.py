"""Carrier code tables as objects and files: a mapping's sub-status must match its milestone,
a table refuses duplicate codes and can't be edited, an unknown carrier is refused, and the
operator's table files replace or add carriers — a broken one is refused naming the file and
the code path. (The built-in tables' contents are in test_carrier_codes.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from orderhub.adapters.carriers.code_tables import CARRIER_IDS, InvalidCodeTable, load_code_book, load_table_file
from orderhub.domain.errors import UnknownCarrier
from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.codes import CodeBook, CodeMapping, CodeTable
from orderhub.domain.tracking.milestones import Milestone

M = Milestone


@pytest.fixture(scope="module")
def book() -> CodeBook:
    return load_code_book()


# --------------------------------------------------------------------------- the domain objects
def test_a_mapping_whose_sub_status_belongs_elsewhere_is_refused() -> None:
    with pytest.raises(RuleInvalid) as caught:
        CodeMapping(M.DELIVERED, "Exception_010")
    assert caught.value.field == "sub_status"
    assert CodeMapping.of("exception").sub_status == "Exception_001"
    with pytest.raises(RuleInvalid) as unknown:
        CodeMapping.of("lost")
    assert unknown.value.field == "milestone"


def test_a_table_refuses_the_same_code_twice_in_different_case() -> None:
    with pytest.raises(RuleInvalid) as caught:
        CodeTable("acme", "Acme", {"ok": CodeMapping.of(M.DELIVERED), " OK": CodeMapping.of(M.DELIVERED)})
    assert "twice" in caught.value.message
    distinct = CodeTable("acme", "Acme", {"ok": CodeMapping.of(M.DELIVERED), "OK": CodeMapping.of(M.EXCEPTION)},
                         case_sensitive=True)
    upper = distinct.lookup("OK")
    assert upper is not None and upper.milestone is M.EXCEPTION


def test_a_table_cannot_be_edited_through_its_codes() -> None:
    table = CodeTable("acme", "Acme", {"ok": CodeMapping.of(M.DELIVERED)})
    with pytest.raises(TypeError):
        table.codes["new"] = CodeMapping.of(M.EXCEPTION)  # type: ignore[index]


def test_an_unknown_carrier_is_refused_with_the_known_ones(book: CodeBook) -> None:
    with pytest.raises(UnknownCarrier) as caught:
        book.normalize("acme", "01")
    assert caught.value.code == "unknown_carrier"
    assert "usps" in caught.value.message
    with pytest.raises(UnknownCarrier):
        book.table("acme")
    with pytest.raises(UnknownCarrier):
        book.with_overrides({"acme": {"01": CodeMapping.of(M.DELIVERED)}})


# --------------------------------------------------------------------------- operator files
ACME_TABLE = """\
carrier: acme
name: Acme Parcels
codes:
  "10": {milestone: in_transit, sub_status: InTransit_002}
  "90": {milestone: delivered}
"""


def test_an_extra_file_replaces_a_built_in_table_and_another_adds_a_carrier(tmp_path: Path, book: CodeBook) -> None:
    (tmp_path / "usps.yaml").write_text(
        'name: USPS (ours)\ncase_sensitive: true\ncodes:\n  "DELIVERED": {milestone: delivered}\n', encoding="utf-8")
    (tmp_path / "acme.yaml").write_text(ACME_TABLE, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a table", encoding="utf-8")
    ours = load_code_book(tmp_path)
    assert ours.table("usps").name == "USPS (ours)"
    assert ours.normalize("usps", "DELIVERED") is not None
    assert ours.normalize("usps", "01") is None, "the file replaces the table, it doesn't extend it"
    acme = ours.normalize("acme", "90")
    assert acme is not None and acme.sub_status == "Delivered_001"
    assert set(ours.carriers()) == {*CARRIER_IDS, "acme"}
    assert ours.table("dhl") is book.table("dhl"), "built-in tables are shared"
    assert load_code_book().normalize("usps", "01") is not None, "the built-in book is untouched"


def test_a_missing_or_empty_extra_dir_means_the_built_in_book(tmp_path: Path, book: CodeBook) -> None:
    assert load_code_book(tmp_path / "nowhere") is book
    assert load_code_book(tmp_path) is book


@pytest.mark.parametrize(("text", "where"), [
    ('codes:\n  "OK": {milestone: delivered, sub_status: InTransit_001}\n', "codes.OK.sub_status"),
    ('codes:\n  "OK": {milestone: arrived}\n', "codes.OK.milestone"),
    ("codes:\n  01: {milestone: delivered}\n", "quote it in YAML"),
    ('codes:\n  "OK": {milestone: delivered}\nkeywords:\n  - {match: "", milestone: delivered}\n',
     "keywords[0].match"),
    ('codes:\n  "OK": {milestone: delivered}\nkeywords:\n  - {match: 签收, milestone: signed}\n',
     "keywords[0].milestone"),
    ('carrier: ups\ncodes:\n  "OK": {milestone: delivered}\n', "carrier"),
    ('codes:\n  "OK": {milestone: delivered}\n  "ok": {milestone: exception}\n', "twice"),
    ('codes:\n  "OK": {milestone: delivered}\ncase_sensitive: maybe\n', "case_sensitive"),
    ("codes: {}\n", "codes"),
    ("codes: [\n", "not valid YAML"),
    ("- just\n- a list\n", "object"),
])
def test_a_broken_file_is_refused_naming_the_file_and_the_path(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "dhl.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidCodeTable) as caught:
        load_code_book(tmp_path)
    assert str(path) in str(caught.value)
    assert where in str(caught.value)
    assert caught.value.source == str(path)


def test_load_table_file_reads_one_table(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ACME_TABLE, encoding="utf-8")
    table = load_table_file(path)
    assert (table.carrier, table.name, table.case_sensitive) == ("acme", "Acme Parcels", False)
    with pytest.raises(InvalidCodeTable) as caught:
        load_table_file(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(caught.value)

"""Carrier code tables: every built-in carrier's raw codes normalize to the expected milestone
and sub-status, unknown codes stay unknown, keywords rescue Chinese scan texts, and overrides
(the ``carrier_codes`` rule set) win and are validated path by path. Table objects and files:
test_carrier_code_files.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orderhub.adapters.carriers.code_tables import (
    CARRIER_IDS,
    code_book_with,
    default_carrier_codes,
    load_code_book,
    validate_carrier_codes,
)
from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.codes import CodeBook, CodeMapping, parse_overrides
from orderhub.domain.tracking.milestones import RETURNED, RETURNING, Milestone, milestone_of_sub_status

M = Milestone
DOCS = Path(__file__).resolve().parents[2] / "docs" / "carriers.md"

# AfterShip's subtags (reference §B.7) plus OrderHub's 9xx extensions: the only sub-statuses a
# table may use, so a typo like InTransit_030 can't slip in.
AFTERSHIP_SUB_STATUSES = {
    "Pending_001", "InfoReceived_001",
    *(f"InTransit_00{n}" for n in range(1, 10)),
    "OutForDelivery_001", "OutForDelivery_003", "OutForDelivery_004",
    "AttemptFail_001", "AttemptFail_002", "AttemptFail_003",
    *(f"Delivered_00{n}" for n in range(1, 6)),
    "AvailableForPickup_001",
    *(f"Exception_{n:03d}" for n in range(1, 14)),
    "Expired_001",
}
ORDERHUB_EXTENSIONS = {"Exception_901"}

SAMPLES: list[tuple[str, str, Milestone, str]] = [
    # USPS: legacy eventCode and v3 statusCategory
    ("usps", "MA", M.INFO_RECEIVED, "InfoReceived_001"),
    ("usps", "Pre-Shipment", M.INFO_RECEIVED, "InfoReceived_001"),
    ("usps", "03", M.IN_TRANSIT, "InTransit_002"),
    ("usps", "A1", M.IN_TRANSIT, "InTransit_003"),
    ("usps", "EF", M.IN_TRANSIT, "InTransit_007"),
    ("usps", "In Transit", M.IN_TRANSIT, "InTransit_001"),
    ("usps", "OF", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("usps", "Out for Delivery", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("usps", "01", M.DELIVERED, "Delivered_001"),
    ("usps", "Delivered", M.DELIVERED, "Delivered_001"),
    ("usps", "17", M.DELIVERED, "Delivered_002"),
    ("usps", "02", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("usps", "51", M.ATTEMPT_FAIL, "AttemptFail_003"),
    ("usps", "Delivery Attempt", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("usps", "16", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("usps", "Available for Pickup", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("usps", "04", M.EXCEPTION, "Exception_003"),
    ("usps", "05", M.EXCEPTION, "Exception_007"),
    ("usps", "09", M.EXCEPTION, RETURNING),
    ("usps", "Return to Sender", M.EXCEPTION, RETURNING),
    ("usps", "11", M.EXCEPTION, "Exception_013"),
    ("usps", "Alert", M.EXCEPTION, "Exception_001"),
    # UPS: status.type letters and 2-char activity codes
    ("ups", "M", M.INFO_RECEIVED, "InfoReceived_001"),
    ("ups", "P", M.IN_TRANSIT, "InTransit_002"),
    ("ups", "I", M.IN_TRANSIT, "InTransit_001"),
    ("ups", "DP", M.IN_TRANSIT, "InTransit_007"),
    ("ups", "O", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("ups", "OT", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("ups", "D", M.DELIVERED, "Delivered_001"),
    ("ups", "KB", M.DELIVERED, "Delivered_001"),
    ("ups", "X", M.EXCEPTION, "Exception_001"),
    ("ups", "RS", M.EXCEPTION, RETURNED),
    ("ups", "RF", M.EXCEPTION, "Exception_003"),
    ("ups", "VD", M.EXCEPTION, "Exception_901"),
    ("ups", "RP", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    # FedEx
    ("fedex", "OC", M.INFO_RECEIVED, "InfoReceived_001"),
    ("fedex", "PU", M.IN_TRANSIT, "InTransit_002"),
    ("fedex", "AR", M.IN_TRANSIT, "InTransit_003"),
    ("fedex", "DP", M.IN_TRANSIT, "InTransit_007"),
    ("fedex", "CC", M.IN_TRANSIT, "InTransit_005"),
    ("fedex", "OD", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("fedex", "DL", M.DELIVERED, "Delivered_001"),
    ("fedex", "DE", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("fedex", "HL", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("fedex", "SE", M.EXCEPTION, "Exception_001"),
    ("fedex", "CD", M.EXCEPTION, "Exception_004"),
    ("fedex", "DD", M.EXCEPTION, "Exception_005"),
    ("fedex", "CA", M.EXCEPTION, "Exception_901"),
    # DHL: unified statusCode and Express codes
    ("dhl", "pre-transit", M.INFO_RECEIVED, "InfoReceived_001"),
    ("dhl", "transit", M.IN_TRANSIT, "InTransit_001"),
    ("dhl", "delivered", M.DELIVERED, "Delivered_001"),
    ("dhl", "failure", M.EXCEPTION, "Exception_001"),
    ("dhl", "unknown", M.PENDING, "Pending_001"),
    ("dhl", "PU", M.IN_TRANSIT, "InTransit_002"),
    ("dhl", "DF", M.IN_TRANSIT, "InTransit_007"),
    ("dhl", "WC", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("dhl", "OK", M.DELIVERED, "Delivered_001"),
    ("dhl", "NH", M.ATTEMPT_FAIL, "AttemptFail_002"),
    ("dhl", "RT", M.EXCEPTION, RETURNED),
    ("dhl", "BA", M.EXCEPTION, "Exception_007"),
    ("dhl", "DM", M.EXCEPTION, "Exception_012"),
    # SF Express opCodes
    ("sf", "50", M.IN_TRANSIT, "InTransit_002"),
    ("sf", "31", M.IN_TRANSIT, "InTransit_003"),
    ("sf", "36", M.IN_TRANSIT, "InTransit_007"),
    ("sf", "605", M.IN_TRANSIT, "InTransit_006"),
    ("sf", "44", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("sf", "130", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("sf", "80", M.DELIVERED, "Delivered_003"),
    ("sf", "70", M.EXCEPTION, "Exception_001"),
    ("sf", "648", M.EXCEPTION, RETURNING),
    # ZTO scanType
    ("zto", "收件", M.IN_TRANSIT, "InTransit_002"),
    ("zto", "发件", M.IN_TRANSIT, "InTransit_007"),
    ("zto", "到件", M.IN_TRANSIT, "InTransit_003"),
    ("zto", "派件", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("zto", "签收", M.DELIVERED, "Delivered_003"),
    ("zto", "SIGNED", M.DELIVERED, "Delivered_003"),
    ("zto", "ARRIVAL", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("zto", "问题件", M.EXCEPTION, "Exception_001"),
    ("zto", "退件", M.EXCEPTION, RETURNING),
    ("zto", "退件签收", M.EXCEPTION, RETURNED),
    # YTO status text (three captured values, the rest through keywords)
    ("yto", "已收件", M.IN_TRANSIT, "InTransit_002"),
    ("yto", "运输中", M.IN_TRANSIT, "InTransit_001"),
    ("yto", "派件中", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("yto", "已签收", M.DELIVERED, "Delivered_003"),
    ("yto", "问题件", M.EXCEPTION, "Exception_001"),
    ("yto", "快件已退回", M.EXCEPTION, RETURNING),
    # STO scan types
    ("sto", "收件", M.IN_TRANSIT, "InTransit_002"),
    ("sto", "装袋", M.IN_TRANSIT, "InTransit_001"),
    ("sto", "到件", M.IN_TRANSIT, "InTransit_003"),
    ("sto", "派件", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("sto", "驿站代收", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("sto", "客户签收", M.DELIVERED, "Delivered_003"),
    ("sto", "问题件", M.EXCEPTION, "Exception_001"),
    # Yunda actions
    ("yunda", "GOT", M.IN_TRANSIT, "InTransit_002"),
    ("yunda", "DEPARTURE", M.IN_TRANSIT, "InTransit_007"),
    ("yunda", "CLEARANCE_FINISH", M.IN_TRANSIT, "InTransit_005"),
    ("yunda", "SENT", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("yunda", "INBOUND", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("yunda", "SIGNED", M.DELIVERED, "Delivered_003"),
    ("yunda", "SIGNFAIL", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("yunda", "ISSUE", M.EXCEPTION, "Exception_001"),
    ("yunda", "REJECTION", M.EXCEPTION, "Exception_003"),
    ("yunda", "RETURN", M.EXCEPTION, RETURNING),
    # JD Logistics numeric states
    ("jdl", "100", M.INFO_RECEIVED, "InfoReceived_001"),
    ("jdl", "420", M.IN_TRANSIT, "InTransit_002"),
    ("jdl", "430", M.IN_TRANSIT, "InTransit_001"),
    ("jdl", "440", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("jdl", "510", M.DELIVERED, "Delivered_003"),
    ("jdl", "530", M.EXCEPTION, "Exception_003"),
    ("jdl", "690", M.EXCEPTION, "Exception_901"),
    ("jdl", "700", M.EXCEPTION, RETURNING),
    # EMS / China Post through aggregator state codes
    ("ems", "0", M.PENDING, "Pending_001"),
    ("ems", "10", M.INFO_RECEIVED, "InfoReceived_001"),
    ("ems", "1", M.IN_TRANSIT, "InTransit_002"),
    ("ems", "204", M.IN_TRANSIT, "InTransit_003"),
    ("ems", "603", M.IN_TRANSIT, "InTransit_005"),
    ("ems", "202", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("ems", "211", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("ems", "301", M.DELIVERED, "Delivered_003"),
    ("ems", "405", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("ems", "404", M.EXCEPTION, "Exception_003"),
    ("ems", "406", M.EXCEPTION, RETURNED),
    ("ems", "407", M.EXCEPTION, RETURNING),
    ("ems", "414", M.EXCEPTION, "Exception_012"),
    ("ems", "415", M.EXCEPTION, "Exception_901"),
    # Cainiao actions [uncertain]
    ("cainiao", "ACCEPT", M.IN_TRANSIT, "InTransit_002"),
    ("cainiao", "TRANSPORT", M.IN_TRANSIT, "InTransit_001"),
    ("cainiao", "DELIVERING", M.OUT_FOR_DELIVERY, "OutForDelivery_001"),
    ("cainiao", "STA_INBOUND", M.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
    ("cainiao", "SIGNED", M.DELIVERED, "Delivered_003"),
    ("cainiao", "FAILED", M.ATTEMPT_FAIL, "AttemptFail_001"),
    ("cainiao", "REJECT", M.EXCEPTION, "Exception_003"),
    ("cainiao", "TMS_RETURN", M.EXCEPTION, RETURNING),
]

UNKNOWN_CODES: list[tuple[str, str]] = [
    ("usps", "DELIVERED"), ("usps", "delivered"), ("usps", "DX"), ("usps", "ZZ"),
    ("ups", "NA"), ("ups", "Q"), ("fedex", "ZZ"), ("dhl", "returned"), ("sf", "12345"),
    ("zto", "UNKNOWN_SCAN"), ("yto", "XYZ"), ("sto", "ABC"), ("yunda", "OTHER"), ("jdl", "999"),
    ("ems", "7"), ("ems", "499"), ("cainiao", "NEW_ACTION"),
]


@pytest.fixture(scope="module")
def book() -> CodeBook:
    return load_code_book()


def _mapping(milestone: str, sub_status: str | None = None) -> dict[str, Any]:
    return {"milestone": milestone} | ({"sub_status": sub_status} if sub_status else {})


# --------------------------------------------------------------------------- the built-in tables
def test_the_samples_cover_every_carrier_with_enough_cases() -> None:
    per_carrier = {carrier: sum(1 for c, *_ in SAMPLES if c == carrier) for carrier in CARRIER_IDS}
    assert min(per_carrier.values()) >= 5, per_carrier
    assert len(SAMPLES) >= 80


@pytest.mark.parametrize(("carrier", "code", "milestone", "sub_status"), SAMPLES)
def test_a_raw_code_normalizes_to_its_milestone(book: CodeBook, carrier: str, code: str, milestone: Milestone,
                                                sub_status: str) -> None:
    found = book.normalize(carrier, code)
    assert found is not None, f"{carrier} {code!r} is unknown"
    assert (found.milestone, found.sub_status) == (milestone, sub_status)


@pytest.mark.parametrize(("carrier", "code"), UNKNOWN_CODES)
def test_an_unknown_code_is_none(book: CodeBook, carrier: str, code: str) -> None:
    assert book.normalize(carrier, code) is None


def test_every_built_in_carrier_loads(book: CodeBook) -> None:
    assert sorted(book.carriers()) == sorted(CARRIER_IDS)
    assert len(CARRIER_IDS) == 12
    for carrier in CARRIER_IDS:
        table = book.table(carrier)
        assert table.carrier == carrier
        assert table.name.strip()
        assert len(table.codes) >= 4


@pytest.mark.parametrize("carrier", CARRIER_IDS)
def test_every_sub_status_belongs_to_its_milestone_and_is_in_the_vocabulary(book: CodeBook, carrier: str) -> None:
    table = book.table(carrier)
    mappings = [*table.codes.values(), *(mapping for _, mapping in table.keywords)]
    for mapping in mappings:
        assert milestone_of_sub_status(mapping.sub_status) is mapping.milestone, mapping
        assert mapping.sub_status in AFTERSHIP_SUB_STATUSES | ORDERHUB_EXTENSIONS, mapping


def test_only_the_chinese_text_carriers_declare_keywords(book: CodeBook) -> None:
    with_keywords = {carrier for carrier in book.carriers() if book.table(carrier).keywords}
    assert with_keywords == {"cainiao", "zto", "yto", "sto"}


def test_the_docs_list_every_sub_status_the_tables_use(book: CodeBook) -> None:
    used = {mapping.sub_status for carrier in book.carriers() for mapping in book.table(carrier).codes.values()}
    documented = set(re.findall(r"`([A-Za-z]+_\d{3})`", DOCS.read_text(encoding="utf-8")))
    assert used <= documented, sorted(used - documented)


def test_the_built_in_book_is_loaded_once(book: CodeBook) -> None:
    assert load_code_book() is book
    assert load_code_book(None) is book


# --------------------------------------------------------------------------- case and whitespace
def test_codes_are_case_insensitive_and_trimmed_by_default(book: CodeBook) -> None:
    lower = book.normalize("ups", "d")
    assert lower is not None and lower.milestone is M.DELIVERED
    padded = book.normalize("fedex", "  dl \n")
    assert padded is not None and padded.milestone is M.DELIVERED
    assert book.normalize("dhl", "DELIVERED") == book.normalize("dhl", "delivered")


def test_usps_is_case_sensitive_but_trimmed(book: CodeBook) -> None:
    assert book.table("usps").case_sensitive
    assert book.normalize("usps", "of") is None
    assert book.normalize("usps", "DELIVERED") is None
    padded = book.normalize("usps", " 01 ")
    assert padded is not None and padded.sub_status == "Delivered_001"


def test_a_table_without_keywords_ignores_the_description(book: CodeBook) -> None:
    assert book.normalize("usps", "ZZ", "Delivered, In/At Mailbox") is None
    assert book.normalize("sf", "999", "已签收") is None


# --------------------------------------------------------------------------- keyword fallback
@pytest.mark.parametrize(("carrier", "code", "description", "sub_status"), [
    ("cainiao", "TMS_SOMETHING_NEW", "【杭州市】您的快件已签收，签收人：本人，如有疑问请联系派件员", "Delivered_003"),
    ("cainiao", "NEW", "【杭州市】快递员正在派件，请准备签收", "OutForDelivery_001"),
    ("cainiao", "NEW", "【杭州市】快件已到达杭州转运中心", "InTransit_003"),
    ("cainiao", "NEW", "【杭州市】快件已从杭州转运中心发出，准备发往上海", "InTransit_007"),
    ("cainiao", "NEW", "【杭州市】快件已被揽收", "InTransit_002"),
    ("cainiao", "NEW", "运输中", "InTransit_001"),
    ("cainiao", "NEW", "快件已到达菜鸟驿站，请及时取件", "AvailableForPickup_001"),
    ("cainiao", "NEW", "快件为问题件，原因：地址不详", "Exception_001"),
    ("cainiao", "NEW", "收件人拒收", "Exception_003"),
    ("cainiao", "NEW", "快件已退回寄件人", RETURNING),
    ("cainiao", "NEW", "退件签收", RETURNED),
    ("cainiao", "NEW", "快件已到达派件网点", "InTransit_003"),
    ("cainiao", "已签收", "", "Delivered_003"),
    ("zto", "第三方代签收", "", "Delivered_003"),
    ("zto", "快件揽收", "", "InTransit_002"),
    ("zto", "SCAN", "【上海市】快件已被 本人 签收，签收人：本人。如有问题请联系派件员", "Delivered_003"),
    ("zto", "SCAN", "派件员正在派件，如有问题请联系", "OutForDelivery_001"),
    ("zto", "SCAN", "【上海市】 快件已退回", RETURNING),
])
def test_keywords_rescue_chinese_texts_the_table_does_not_list(book: CodeBook, carrier: str, code: str,
                                                               description: str, sub_status: str) -> None:
    found = book.normalize(carrier, code, description)
    assert found is not None
    assert found.sub_status == sub_status


def test_an_exact_code_beats_the_keywords(book: CodeBook) -> None:
    # "退件签收" contains 签收 (delivered) but is its own code: returned to sender.
    found = book.normalize("zto", "退件签收", "已签收")
    assert found is not None and found.sub_status == RETURNED


def test_a_text_with_no_keyword_stays_unknown(book: CodeBook) -> None:
    assert book.normalize("cainiao", "NEW_ACTION", "物流信息已更新") is None
    # "问题" alone is a courtesy phrase ("如有问题请联系…"), not a problem parcel.
    assert book.normalize("cainiao", "NEW_ACTION", "如有问题请拨打客服电话") is None


# --------------------------------------------------------------------------- overrides
def test_usps_delivered_is_unknown_until_an_operator_overrides_it(book: CodeBook) -> None:
    assert book.normalize("usps", "DELIVERED") is None
    body = {"overrides": {"usps": {"DELIVERED": {"milestone": "delivered"}}}}
    validate_carrier_codes(body)
    patched = book.with_overrides(parse_overrides(body, known_carriers=CARRIER_IDS))
    found = patched.normalize("usps", "DELIVERED")
    assert found is not None
    assert (found.milestone, found.sub_status) == (M.DELIVERED, "Delivered_001")
    still = patched.normalize("usps", "01")
    assert still is not None and still.milestone is M.DELIVERED
    assert book.normalize("usps", "DELIVERED") is None, "the original book must not change"
    assert patched.normalize("usps", "delivered") is None, "USPS overrides match case-sensitively too"


def test_an_override_beats_the_table(book: CodeBook) -> None:
    patched = book.with_overrides({"usps": {"01": CodeMapping.of("exception", "Exception_013", "lost after all")}})
    found = patched.normalize("usps", "01")
    assert found is not None
    assert (found.milestone, found.sub_status, found.description) == (M.EXCEPTION, "Exception_013", "lost after all")
    other = patched.normalize("usps", "OF")
    assert other is not None and other.milestone is M.OUT_FOR_DELIVERY


def test_an_override_matches_like_its_carriers_table(book: CodeBook) -> None:
    patched = book.with_overrides({"ups": {"zz": CodeMapping.of(M.IN_TRANSIT)}})
    found = patched.normalize("ups", " ZZ ")
    assert found is not None and found.sub_status == "InTransit_001"
    assert patched.overrides == {"ups": {"zz": CodeMapping.of(M.IN_TRANSIT)}}


def test_with_overrides_shares_the_tables_and_replaces_the_overrides(book: CodeBook) -> None:
    first = book.with_overrides({"dhl": {"XX": CodeMapping.of(M.EXCEPTION)}})
    second = first.with_overrides({"dhl": {"YY": CodeMapping.of(M.EXCEPTION)}})
    for carrier in CARRIER_IDS:
        assert second.table(carrier) is book.table(carrier)
    assert second.normalize("dhl", "XX") is None
    assert second.normalize("dhl", "YY") is not None


def test_code_book_with_applies_a_stored_rule_set() -> None:
    patched = code_book_with({"overrides": {"usps": {"DELIVERED": {"milestone": "delivered"}}}})
    assert patched.normalize("usps", "DELIVERED") is not None
    assert code_book_with(default_carrier_codes()).normalize("usps", "DELIVERED") is None


def test_the_default_rule_set_is_valid_and_empty() -> None:
    body = default_carrier_codes()
    assert body == {"overrides": {}}
    validate_carrier_codes(body)
    assert parse_overrides(body, known_carriers=CARRIER_IDS) == {}
    body["overrides"]["usps"] = {}
    assert default_carrier_codes() == {"overrides": {}}, "each call is a fresh copy"


def test_parse_overrides_fills_the_default_sub_status_and_keeps_the_description() -> None:
    parsed = parse_overrides({"overrides": {"usps": {"DELIVERED": {"milestone": "delivered",
                                                                    "description": "new v3 spelling"}}},
                              "description": "USPS started sending DELIVERED"}, known_carriers=CARRIER_IDS)
    assert parsed == {"usps": {"DELIVERED": CodeMapping(M.DELIVERED, "Delivered_001", "new v3 spelling")}}


@pytest.mark.parametrize(("body", "field", "message_part"), [
    ({"overrides": {"acme": {"X": _mapping("delivered")}}}, "overrides.acme", "usps"),
    ({"overrides": {"usps": {"DELIVERED": _mapping("done")}}},
     "overrides.usps.DELIVERED.milestone", "out_for_delivery"),
    ({"overrides": {"usps": {"DELIVERED": _mapping("delivered", "InTransit_001")}}},
     "overrides.usps.DELIVERED.sub_status", "belongs to in_transit"),
    ({"overrides": {"usps": {"DELIVERED": _mapping("delivered", "Delivered")}}},
     "overrides.usps.DELIVERED.sub_status", "<Tag>_NNN"),
    ({"overrides": {"usps": {"DELIVERED": {"sub_status": "Delivered_001"}}}},
     "overrides.usps.DELIVERED.milestone", "required"),
    ({"overrides": {"usps": {"  ": _mapping("delivered")}}}, "overrides.usps", "empty"),
    ({"overrides": {"usps": {"DELIVERED": "delivered"}}}, "overrides.usps.DELIVERED", "object"),
    ({"overrides": {"usps": ["DELIVERED"]}}, "overrides.usps", "object"),
    ({"overrides": ["usps"]}, "overrides", "object"),
    ({}, "overrides", "overrides"),
    ({"overrides": {}, "override": {}}, "override", "unknown key"),
    ({"overrides": {"usps": {"DELIVERED": {"milestone": "delivered", "colour": "red"}}}},
     "overrides.usps.DELIVERED.colour", "unknown key"),
    ({"overrides": {"usps": {"DELIVERED": {"milestone": "delivered", "description": 3}}}},
     "overrides.usps.DELIVERED.description", "string"),
    ({"overrides": {"usps": {"DELIVERED": {"milestone": "delivered", "sub_status": 1}}}},
     "overrides.usps.DELIVERED.sub_status", "string"),
])
def test_parse_overrides_names_the_path_at_fault(body: dict[str, Any], field: str, message_part: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_overrides(body, known_carriers=CARRIER_IDS)
    assert caught.value.field == field
    assert message_part in caught.value.message
    assert caught.value.code == "rule_invalid"


def test_the_rule_set_validator_refuses_a_bad_body() -> None:
    with pytest.raises(RuleInvalid) as caught:
        validate_carrier_codes({"overrides": {"usps": {"DELIVERED": {"milestone": "arrived"}}}})
    assert caught.value.field == "overrides.usps.DELIVERED.milestone"
    assert "delivered" in caught.value.message


def test_every_simulated_journey_speaks_its_carriers_table() -> None:
    """The simulated carrier (demo, e2e) only sends codes the built-in tables know."""
    from orderhub.simulation.fake_carrier import JOURNEYS  # noqa: PLC0415 - simulation, only here

    book = load_code_book()
    unknown = [(carrier, code) for carrier, journey in JOURNEYS.items() for code, text in journey
               if book.normalize(carrier, code, text) is None]
    assert unknown == []
    for carrier, journey in JOURNEYS.items():
        last = book.normalize(carrier, journey[-1][0], journey[-1][1])
        assert last is not None and last.milestone.value == "delivered", carrier

"""Every channel spec against its recorded payloads (docs/channels.md §8).

Generic on purpose: it discovers ``tests/fixtures/channels/<channel>/<case>.json`` and the
matching ``.expected.json``, so a new channel's fixtures are tested without editing this file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orderhub.adapters.channels.canonical import mapped_to_dict
from orderhub.adapters.channels.mapping import BUILTIN_DIR, ChannelSpec, SpecRegistry, load_registry
from orderhub.adapters.channels.signatures import sign, verify_signature
from orderhub.domain.errors import MappingFailed, SignatureInvalid

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "channels"
SECRET = "contract-test-secret"
APP_KEY = "contract-test-app-key"
REQUIRED_ORDER_KEYS = {"external_id", "status", "channel_status", "currency", "placed_at", "lines", "shipping_fee",
                       "discount", "total", "buyer", "shipping_address", "tags", "payment_method"}


def _cases() -> list[tuple[str, str]]:
    found = []
    for channel_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for body in sorted(channel_dir.glob("*.json")):
            if body.name.endswith((".expected.json", ".headers.json")):
                continue
            found.append((channel_dir.name, body.name[: -len(".json")]))
    return found


CASES = _cases()


@pytest.fixture(scope="module")
def registry() -> SpecRegistry:
    return load_registry()


def _load(channel: str, case: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    directory = FIXTURES / channel
    body = (directory / f"{case}.json").read_bytes()
    headers_file = directory / f"{case}.headers.json"
    headers = json.loads(headers_file.read_text("utf-8")) if headers_file.exists() else {}
    expected_file = directory / f"{case}.expected.json"
    assert expected_file.exists(), f"{channel}/{case}.json has no {case}.expected.json"
    return body, {k.lower(): str(v) for k, v in headers.items()}, json.loads(expected_file.read_text("utf-8"))


def _spec(registry: SpecRegistry, channel: str) -> ChannelSpec:
    return registry.get(channel)


@pytest.mark.parametrize(("channel", "case"), CASES, ids=[f"{c}/{k}" for c, k in CASES])
def test_case_maps_to_expected(registry: SpecRegistry, channel: str, case: str) -> None:
    body, headers, expected = _load(channel, case)
    spec = _spec(registry, channel)
    payload = spec.parse_body(body, headers)
    if "error" in expected:
        with pytest.raises(MappingFailed) as failure:
            spec.identify(payload, headers)
            spec.map(payload, headers)
        assert failure.value.code == expected["error"]["code"]
        assert failure.value.field == expected["error"]["field"]
        return
    key = spec.identify(payload, headers)
    assert key.kind == expected["kind"]
    if "key" in expected:
        assert {"external_id": key.external_id, "event_version": key.event_version} == expected["key"]
    mapped = mapped_to_dict(spec.map(payload, headers))
    assert mapped["kind"] == expected["kind"]
    if expected["kind"] == "order":
        missing = REQUIRED_ORDER_KEYS - set(expected["order"])
        assert not missing, f"expected order lacks {sorted(missing)}"
        # Compare every field the fixture states (attributes are optional in fixtures).
        assert {k: mapped["order"][k] for k in expected["order"]} == expected["order"]
        assert mapped["order"]["external_id"] == key.external_id
    elif expected["kind"] == "status":
        assert mapped["status"] == expected["status"]
        assert mapped["status"]["external_id"] == key.external_id


MAPPABLE = [(c, k) for c, k in CASES if "error" not in _load(c, k)[2] and _load(c, k)[0].lstrip()[:1] == b"{"]


@pytest.mark.parametrize(("channel", "case"), MAPPABLE, ids=[f"{c}/{k}" for c, k in MAPPABLE])
def test_key_does_not_depend_on_json_layout(registry: SpecRegistry, channel: str, case: str) -> None:
    """The same message re-serialised (a poll returns the same order differently laid out) dedups."""
    body, headers, _ = _load(channel, case)
    spec = _spec(registry, channel)
    payload = spec.parse_body(body, headers)
    reshaped = json.dumps(dict(reversed(list(payload.items()))), indent=4, ensure_ascii=True).encode()
    again = spec.parse_body(reshaped, headers)
    assert spec.identify(again, headers) == spec.identify(payload, headers)
    assert spec.map(again, headers) == spec.map(payload, headers)


LATER = [(c, k) for c, k in CASES if "later_than" in _load(c, k)[2]]


@pytest.mark.parametrize(("channel", "case"), LATER, ids=[f"{c}/{k}" for c, k in LATER])
def test_later_version_has_a_greater_version(registry: SpecRegistry, channel: str, case: str) -> None:
    spec = _spec(registry, channel)
    body, headers, expected = _load(channel, case)
    earlier_body, earlier_headers, earlier_expected = _load(channel, expected["later_than"])
    later_key = spec.identify(spec.parse_body(body, headers), headers)
    earlier_key = spec.identify(spec.parse_body(earlier_body, earlier_headers), earlier_headers)
    assert later_key.external_id == earlier_key.external_id
    assert later_key.event_version != earlier_key.event_version
    later_doc = expected.get("order") or expected.get("status")
    earlier_doc = earlier_expected.get("order") or earlier_expected.get("status")
    assert later_doc is not None and earlier_doc is not None
    assert later_doc["updated_at"] and earlier_doc["updated_at"]
    assert datetime.fromisoformat(later_doc["updated_at"]) > datetime.fromisoformat(earlier_doc["updated_at"])


BUILTIN = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


@pytest.mark.parametrize("channel", BUILTIN)
def test_every_builtin_spec_has_fixtures(channel: str) -> None:
    directory = FIXTURES / channel
    assert directory.is_dir(), f"no fixtures for built-in channel {channel}"
    expectations = [json.loads(p.read_text("utf-8")) for p in directory.glob("*.expected.json")]
    assert any(e.get("kind") == "order" for e in expectations), f"{channel}: no full order case"
    assert any("error" in e for e in expectations), f"{channel}: no negative case"
    assert any("later_than" in e for e in expectations), f"{channel}: no later-version case"


@pytest.mark.parametrize("channel", BUILTIN)
def test_signature_round_trip(registry: SpecRegistry, channel: str) -> None:
    spec = registry.get(channel)
    case = next(k for c, k in CASES if c == channel)
    body, _, _ = _load(channel, case)
    url = f"https://hub.example.com/webhooks/{channel}/shop-1"
    signed = sign(spec.signature, body=body, secret=SECRET, url=url, app_key=APP_KEY, header=spec.signature_header)
    kwargs: dict[str, Any] = {"secret": SECRET, "url": url, "app_key": APP_KEY, "header": spec.signature_header}
    if spec.signature == "none":
        assert signed == {}
        with pytest.raises(SignatureInvalid):
            verify_signature(spec.signature, body=body, headers=signed, **kwargs)
        return
    verify_signature(spec.signature, body=body, headers=signed, **kwargs)
    with pytest.raises(SignatureInvalid):
        verify_signature(spec.signature, body=body + b" ", headers=signed, **kwargs)
    with pytest.raises(SignatureInvalid):
        verify_signature(spec.signature, body=body, headers=signed, **{**kwargs, "secret": "another-secret"})
    with pytest.raises(SignatureInvalid, match="missing"):
        verify_signature(spec.signature, body=body, headers={}, **kwargs)

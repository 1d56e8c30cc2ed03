"""Push signature schemes: known values computed independently, tampering, missing headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from orderhub.adapters.channels.signatures import SCHEMES, sign, signature_header, verify_signature
from orderhub.domain.errors import SignatureInvalid

BODY = b'{"id": 5940139491234, "total_price": "59.99"}'
SECRET = "hush"
URL = "https://hub.example.com/webhooks/shopee/sp-1"
APP_KEY = "app-123"


def _hmac(message: bytes) -> bytes:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).digest()


def _md5(message: bytes) -> str:
    return hashlib.md5(message, usedforsecurity=False).hexdigest()


KNOWN: dict[str, tuple[str, str]] = {
    "shopify": ("x-shopify-hmac-sha256", base64.b64encode(_hmac(BODY)).decode()),
    "woocommerce": ("x-wc-webhook-signature", base64.b64encode(_hmac(BODY)).decode()),
    "tiktok": ("authorization", _hmac(APP_KEY.encode() + BODY).hex()),
    "shopee": ("authorization", _hmac(URL.encode() + b"|" + BODY).hex()),
    "top": ("x-top-sign", _hmac(BODY).hex().upper()),
    "jd": ("x-jd-sign", _md5(SECRET.encode() + BODY + SECRET.encode()).upper()),
    "pinduoduo": ("x-pdd-sign", _md5(SECRET.encode() + BODY + SECRET.encode()).upper()),
    "douyin": ("event-sign", _md5(APP_KEY.encode() + BODY + SECRET.encode())),
    "kuaishou": ("x-ks-sign", _hmac(BODY).hex()),
    "xiaohongshu": ("x-xhs-sign", _hmac(BODY).hex()),
}


def test_every_scheme_is_covered() -> None:
    assert set(SCHEMES) == {*KNOWN, "orderhub", "none"}


@pytest.mark.parametrize("scheme", sorted(KNOWN))
def test_known_signature_values(scheme: str) -> None:
    header, value = KNOWN[scheme]
    assert signature_header(scheme) == header
    assert sign(scheme, body=BODY, secret=SECRET, url=URL, app_key=APP_KEY) == {header: value}
    verify_signature(scheme, body=BODY, headers={header: value}, secret=SECRET, url=URL, app_key=APP_KEY)


@pytest.mark.parametrize("scheme", sorted(KNOWN))
def test_tampered_body_wrong_secret_and_missing_header_are_refused(scheme: str) -> None:
    header, value = KNOWN[scheme]
    kwargs: dict[str, Any] = {"url": URL, "app_key": APP_KEY}
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_signature(scheme, body=BODY.replace(b"59.99", b"0.01"), headers={header: value}, secret=SECRET,
                         **kwargs)
    with pytest.raises(SignatureInvalid):
        verify_signature(scheme, body=BODY, headers={header: value}, secret="other", **kwargs)
    with pytest.raises(SignatureInvalid, match=f"missing signature header {header}") as failure:
        verify_signature(scheme, body=BODY, headers={"x-other": value}, secret=SECRET, **kwargs)
    assert failure.value.code == "signature_invalid"
    assert failure.value.field == header


def test_shopee_signs_the_callback_url() -> None:
    headers = sign("shopee", body=BODY, secret=SECRET, url=URL)
    with pytest.raises(SignatureInvalid):
        verify_signature("shopee", body=BODY, headers=headers, secret=SECRET, url=URL + "?x=1")


def test_hex_schemes_accept_either_case_base64_does_not() -> None:
    header, value = KNOWN["tiktok"]
    verify_signature("tiktok", body=BODY, headers={header: value.upper()}, secret=SECRET, url=URL, app_key=APP_KEY)
    header, value = KNOWN["shopify"]
    with pytest.raises(SignatureInvalid):
        verify_signature("shopify", body=BODY, headers={header: value.swapcase()}, secret=SECRET, url=URL)


def test_app_key_schemes_need_the_app_key() -> None:
    header, value = KNOWN["tiktok"]
    with pytest.raises(SignatureInvalid, match="app_key"):
        verify_signature("tiktok", body=BODY, headers={header: value}, secret=SECRET, url=URL)
    with pytest.raises(ValueError, match="app_key"):
        sign("douyin", body=BODY, secret=SECRET, url=URL)


def test_orderhub_scheme_signs_timestamp_dot_body() -> None:
    headers = sign("orderhub", body=BODY, secret=SECRET, url=URL, timestamp=1763712000)
    expected = "sha256=" + _hmac(b"1763712000." + BODY).hex()
    assert headers == {"x-orderhub-timestamp": "1763712000", "x-orderhub-signature": expected}
    verify_signature("orderhub", body=BODY, headers=headers, secret=SECRET, url=URL)
    with pytest.raises(SignatureInvalid):
        verify_signature("orderhub", body=BODY, headers={**headers, "x-orderhub-timestamp": "1763712001"},
                         secret=SECRET, url=URL)
    with pytest.raises(SignatureInvalid, match="x-orderhub-timestamp"):
        verify_signature("orderhub", body=BODY, headers={"x-orderhub-signature": expected}, secret=SECRET, url=URL)


def test_none_scheme_refuses_every_push() -> None:
    assert sign("none", body=BODY, secret=SECRET, url=URL) == {}
    with pytest.raises(SignatureInvalid, match="csv shops take imports"):
        verify_signature("none", body=BODY, headers={"x-anything": "1"}, secret=SECRET, url=URL)


def test_unknown_scheme_empty_secret_and_header_override() -> None:
    with pytest.raises(SignatureInvalid, match="unknown signature scheme"):
        verify_signature("rot13", body=BODY, headers={}, secret=SECRET, url=URL)
    header, value = KNOWN["jd"]
    with pytest.raises(SignatureInvalid, match="no secret"):
        verify_signature("jd", body=BODY, headers={header: value}, secret="", url=URL)
    signed = sign("jd", body=BODY, secret=SECRET, url=URL, header="X-Vender-Sign")
    assert signed == {"x-vender-sign": value}
    verify_signature("jd", body=BODY, headers=signed, secret=SECRET, url=URL, header="X-Vender-Sign")

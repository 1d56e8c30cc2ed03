"""Webhook push signatures, checked on the raw body bytes with a constant-time compare.

Each channel spec names its scheme (``signature: shopify``). :func:`verify_signature` is what
the webhook endpoint calls; :func:`sign` produces the headers a genuine channel would send
(for tests, the demo and the benchmarks). Header names are lower-case, as the endpoint passes
them. Schemes marked *assumption* below follow the reference notes
(``shared/reference/channels-and-carriers.md``) where those are marked unverified or
3rd-party; they are documented as such in ``docs/channels.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orderhub.domain.errors import SignatureInvalid


@dataclass(frozen=True, slots=True)
class _Scheme:
    header: str
    # (secret, body, url, app_key, headers) -> the expected header value
    compute: Callable[[str, bytes, str, str | None, Mapping[str, str]], str]
    case_insensitive: bool = False
    needs_app_key: bool = False


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _b64_hmac(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    return base64.b64encode(_hmac(secret, body)).decode("ascii")


def _hex_hmac(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    return _hmac(secret, body).hex()


def _upper_hex_hmac(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    return _hmac(secret, body).hex().upper()


def _tiktok(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    return _hmac(secret, (app_key or "").encode("utf-8") + body).hex()


def _shopee(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    return _hmac(secret, url.encode("utf-8") + b"|" + body).hex()


def _md5_wrapped(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    key = secret.encode("utf-8")
    return hashlib.md5(key + body + key, usedforsecurity=False).hexdigest().upper()


def _douyin(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    message = (app_key or "").encode("utf-8") + body + secret.encode("utf-8")
    return hashlib.md5(message, usedforsecurity=False).hexdigest()


ORDERHUB_TIMESTAMP = "x-orderhub-timestamp"


def _orderhub(secret: str, body: bytes, url: str, app_key: str | None, headers: Mapping[str, str]) -> str:
    timestamp = headers.get(ORDERHUB_TIMESTAMP)
    if not timestamp:
        raise SignatureInvalid(f"missing header {ORDERHUB_TIMESTAMP}", field=ORDERHUB_TIMESTAMP)
    return "sha256=" + _hmac(secret, timestamp.encode("utf-8") + b"." + body).hex()


SCHEMES: dict[str, _Scheme | None] = {
    "shopify": _Scheme("x-shopify-hmac-sha256", _b64_hmac),
    "woocommerce": _Scheme("x-wc-webhook-signature", _b64_hmac),
    "tiktok": _Scheme("authorization", _tiktok, case_insensitive=True, needs_app_key=True),
    "shopee": _Scheme("authorization", _shopee, case_insensitive=True),
    # assumption: TOP documents md5/hmac/hmac-sha256 request signing; for pushes we take
    # upper-case hex HMAC-SHA256(secret, raw body) in x-top-sign.
    "top": _Scheme("x-top-sign", _upper_hex_hmac, case_insensitive=True),
    # assumption: md5(secret + body + secret) upper, the shape of their request signing.
    "jd": _Scheme("x-jd-sign", _md5_wrapped, case_insensitive=True),
    "pinduoduo": _Scheme("x-pdd-sign", _md5_wrapped, case_insensitive=True),
    # reference marks this unverified: event-sign = md5(app_key + body + app_secret).
    "douyin": _Scheme("event-sign", _douyin, case_insensitive=True, needs_app_key=True),
    # assumption: hex HMAC-SHA256(secret, raw body).
    "kuaishou": _Scheme("x-ks-sign", _hex_hmac, case_insensitive=True),
    "xiaohongshu": _Scheme("x-xhs-sign", _hex_hmac, case_insensitive=True),
    "orderhub": _Scheme("x-orderhub-signature", _orderhub),
    "none": None,
}


def signature_header(scheme: str) -> str | None:
    """The header a scheme's signature travels in (None for ``none``)."""
    found = _scheme(scheme)
    return found.header if found else None


def _scheme(name: str) -> _Scheme | None:
    if name not in SCHEMES:
        raise SignatureInvalid(f"unknown signature scheme {name!r}", field="signature")
    return SCHEMES[name]


def verify_signature(scheme: str, *, body: bytes, headers: Mapping[str, str], secret: str, url: str,
                     app_key: str | None = None, header: str | None = None) -> None:
    """Check a push's signature; raise SignatureInvalid (saying which header) when it doesn't hold.

    ``header`` overrides the scheme's header name (a spec's ``signature_header``).
    """
    found = _scheme(scheme)
    if found is None:
        raise SignatureInvalid("csv shops take imports, not pushes: this channel has no signed webhook")
    name = (header or found.header).lower()
    given = headers.get(name)
    if not given:
        raise SignatureInvalid(f"missing signature header {name}", field=name)
    if not secret:
        raise SignatureInvalid("the shop has no secret to check the signature with", field="secret")
    if found.needs_app_key and not app_key:
        raise SignatureInvalid(f"the {scheme} signature needs the shop's app_key", field="app_key")
    expected = found.compute(secret, body, url, app_key, headers)
    if found.case_insensitive:
        given, expected = given.lower(), expected.lower()
    if not hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8")):
        raise SignatureInvalid(f"signature in {name} does not match the body", field=name)


def sign(scheme: str, *, body: bytes, secret: str, url: str, app_key: str | None = None,
         header: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The signature headers a genuine channel would send with ``body`` (``{}`` for ``none``)."""
    found = _scheme(scheme)
    if found is None:
        return {}
    if found.needs_app_key and not app_key:
        raise ValueError(f"the {scheme} signature needs an app_key")
    headers: dict[str, str] = {}
    if scheme == "orderhub":
        headers[ORDERHUB_TIMESTAMP] = str(int(time.time()) if timestamp is None else timestamp)
    headers[(header or found.header).lower()] = found.compute(secret, body, url, app_key, headers)
    return headers
